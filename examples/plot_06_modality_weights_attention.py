"""
===========================================================
Which modality counts for which row and which task
===========================================================

A network that fuses several modalities can say how much each one counted:

* with ``fusion="attention"`` (or ``"gated"``) every row gets its own weights over the
  modalities — :meth:`~sklearn_mtml.MultiTaskNet.modality_weights`, drawn by
  :func:`~sklearn_mtml.plot_modality_weights`;
* with ``architecture="task_attention"`` every *task* attends over the modalities with its
  own queries — :meth:`~sklearn_mtml.MultiTaskNet.attention_weights`, drawn by
  :func:`~sklearn_mtml.plot_task_attention`.

We use the audio-visual digits shipped with the package (spoken digits paired with digit
images; tasks digit, speaker and accent) and hide the audio of 30 % of the test rows.
"""

# %%
# Features and a test set with missing audio
# ------------------------------------------
import numpy as np

from sklearn_mtml import AudioFeatures, ImageFeatures, ModalityBlocks, ModalityFusion
from sklearn_mtml.datasets import load_av_digits

X, Y, split = load_av_digits()
train, test = split == "train", split == "test"
fusion = ModalityFusion([
    ("image", ImageFeatures(), "image"),
    ("audio", AudioFeatures(sr=8000), "audio"),
])
B_train = fusion.fit_transform(X[train])
B_test = fusion.transform(X[test])
masks = {name: mask.copy() for name, mask in B_test.masks.items()}
masks["audio"][np.random.RandomState(0).rand(test.sum()) < 0.3] = False
B_test = ModalityBlocks(dict(B_test.blocks), masks)
print(B_test)

# %%
# Attention fusion: one weight per modality and row
# -------------------------------------------------
# The attention fusion scores each modality's embedding and mixes them with a softmax over
# the modalities the row has. Modality dropout (on by default with several modalities)
# hides a modality of some training rows, so the network learns to do without it.
from sklearn_mtml import MultiTaskNet, plot_modality_weights

attention = MultiTaskNet(fusion="attention", random_state=0).fit(B_train, Y[train])
print({task: round(score, 3) for task, score in attention.score_tasks(B_test, Y[test]).items()})
fig = plot_modality_weights(attention, B_test, n_rows=16)

# %%
# Each bar is one test row; its tick label names the modality the row lacks. By default
# the plot shows complete rows and rows with a missing modality side by side.
#
# What to look for: when a row has its audio, the audio takes nearly all the weight — it
# alone names the digit, the speaker and the accent, so the network has no reason to look
# at the image. When the audio is missing, the image gets all the weight (the softmax runs
# over the present modalities only), and the row is still classified from its image: the
# digit accuracy above stays high although 30 % of the test audio is gone.
#
# The distribution over all test rows, grouped by the modalities a row has, shows the same
# without picking rows: a handful of complete rows give the image a few percent, none more.
fig = plot_modality_weights(attention, B_test, kind="distribution")

# %%
# Task attention: which modality each task looks at
# --------------------------------------------------
# With ``architecture="task_attention"`` the modalities are tokens and each task's learned
# queries attend over them. ``fusion="auto"`` then leaves the fusion to the architecture.
from sklearn_mtml import plot_task_attention

tasks = MultiTaskNet(architecture="task_attention", random_state=0).fit(B_train, Y[train])
print({task: round(score, 3) for task, score in tasks.score_tasks(B_test, Y[test]).items()})
complete = np.flatnonzero(B_test.presence.all(1))
fig = plot_task_attention(tasks, B_test, rows=complete)

# %%
# What to look for: the tasks disagree. ``speaker`` and ``accent`` put about three
# quarters of their attention on the audio — only the audio carries them — while ``digit``
# splits its attention about evenly between the two modalities, which both carry it. The
# heatmap is the mean over the complete test rows.
#
# Two single rows side by side, on the same colour scale: a complete one, and one whose
# audio is missing. Without audio every task can only attend to the image.
import matplotlib.pyplot as plt

without_audio = int(np.flatnonzero(~B_test.masks["audio"])[0])
fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), layout="constrained")
plot_task_attention(tasks, B_test, rows=int(complete[0]), ax=axes[0], colorbar=False)
plot_task_attention(tasks, B_test, rows=without_audio, ax=axes[1])
plt.show()

# %%
# The weights say where the network *looked*, not why it was right: a modality can take
# little weight and still matter (the network may read it through the other one's
# representation), so read them as a description of the model, not as feature importances
# with a causal meaning.
