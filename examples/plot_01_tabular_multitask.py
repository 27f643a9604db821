"""
=======================================================
Multi-task learning on a table: one network, two tasks
=======================================================

One :class:`~sklearn_mtml.MultiTaskNet` learns two targets of different kinds at once from
scikit-learn's bundled wine data set (178 wines, 13 chemical measurements): the **cultivar**
(3 classes) and the **alcohol** content (a regression target, taken out of the inputs). We
compare it, by 5-fold cross-validation, with what one would try first — a logistic
regression for the cultivar and a ridge regression for the alcohol — and with two single-task
networks.

With 178 rows every estimate is noisy: read the error bars before the bars.
"""

# %%
# The data: two targets in one DataFrame
# --------------------------------------
# ``Y`` has one column per task. The cultivar is a string column, so ``MultiTaskNet`` infers
# a multi-class task; alcohol is a float column, so it infers a regression task. No scaler
# is needed: the network standardises its inputs (and regression targets) itself.
import pandas as pd
from sklearn.datasets import load_wine

wine = load_wine(as_frame=True)
X = wine.data.drop(columns=["alcohol"])
Y = pd.DataFrame({
    "cultivar": wine.target_names[wine.target],
    "alcohol": wine.data["alcohol"],
})
tasks = list(Y.columns)
print(X.shape)
print(Y.head(3))

# %%
# Cross-validated scores of the multi-task network
# ------------------------------------------------
# :func:`~sklearn_mtml.task_scorers` gives one scorer per task (accuracy for classification,
# R² for regression) and their mean, so ``cross_validate`` reports every task of one model.
from sklearn.model_selection import KFold, cross_validate

from sklearn_mtml import MultiTaskNet, task_scorers

cv = KFold(5, shuffle=True, random_state=0)
scores = {}  # model -> task -> per-fold scores
result = cross_validate(MultiTaskNet(random_state=0), X, Y, cv=cv,
                        scoring=task_scorers(tasks))
scores["one multi-task network"] = {t: result[f"test_{t}"] for t in tasks}

# %%
# Baselines: one linear model per task, and one network per task
# ---------------------------------------------------------------
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

linear = {
    "cultivar": make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
    "alcohol": make_pipeline(StandardScaler(), RidgeCV()),
}
scores["logistic / ridge regression"] = {
    t: cross_validate(linear[t], X, Y[t], cv=cv)["test_score"] for t in tasks}
scores["single-task networks"] = {
    t: cross_validate(MultiTaskNet(random_state=0), X, Y[[t]], cv=cv)["test_score"]
    for t in tasks}

for model, per_task in scores.items():
    print(f"{model:28s}" + "".join(f"  {t} {s.mean():.3f} ± {s.std():.3f}"
                                   for t, s in per_task.items()))

# %%
# Per-task scores side by side
# ----------------------------
# One group of bars per task, the error bars are the standard deviation over the 5 folds.
import matplotlib.pyplot as plt

fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), layout="constrained")
models = list(scores)
colors = ["tab:grey", "tab:orange", "tab:blue"]
for ax, task, metric in zip(axes, tasks, ["accuracy", "R²"]):
    order = ["logistic / ridge regression", "single-task networks", "one multi-task network"]
    means = [scores[m][task].mean() for m in order]
    stds = [scores[m][task].std() for m in order]
    bars = ax.bar(range(3), means, yerr=stds, capsize=4, color=colors)
    ax.bar_label(bars, fmt="%.3f", label_type="center", color="white", fontweight="bold")
    ax.set_xticks(range(3), ["logistic /\nridge", "single-task\nnetworks",
                             "multi-task\nnetwork"])
    ax.set_title(f"{task} ({metric}, 5-fold CV)")
    ax.set_ylim(0, 1.05)
    ax.yaxis.grid(True, alpha=0.3)
plt.show()

# %%
# What to look for: all three reach about 97-98 % accuracy on the cultivar — a linear model
# is all this task needs. On alcohol the networks gain a few hundredths of R² over the ridge
# regression, but the folds spread by ±0.14 or more, so that gain is not established on
# 178 rows. The single multi-task network scores like the two single-task ones: here sharing
# neither helps nor hurts, and one model does the work of two.
#
# Learning curves of one fit
# --------------------------
# With ``train_split=0.2`` the network holds out 20 % of the rows, records every task's
# validation loss and metric, and stops early (restoring the best epoch).
# :func:`~sklearn_mtml.plot_history` then draws the per-task losses and, by default, the
# validation metrics.
from sklearn_mtml import plot_history

net = MultiTaskNet(train_split=0.2, random_state=0).fit(X, Y)
print(f"stopped after {len(net.history)} epochs, best epoch {net.best_epoch_}")
fig = plot_history(net)
plt.show()

# %%
# The cultivar's losses (blue) fall fast and its validation accuracy reaches 97 % by the
# sixth epoch. The alcohol's training loss (solid orange) keeps falling while its validation
# loss (dashed) stops improving after about five epochs: past that point the network fits
# the training rows, not wine in general — the gap between the two orange curves is what
# early stopping guards against. The grey line is the epoch whose weights were restored.
