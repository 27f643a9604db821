"""
=========================================================
A pretrained backbone as an encoder: frozen or fine-tuned
=========================================================

Any Hugging Face vision, text or audio model can encode a block of a
:class:`~sklearn_mtml.MultiTaskNet`: give a
:class:`~sklearn_mtml.nn.pretrained.PretrainedEncoder` as the block's encoder. This gallery is
built offline, so the backbone here is a tiny ResNet **configuration with random weights**;
with a real checkpoint you pass its name instead (``PretrainedEncoder("microsoft/resnet-18")``,
from the local Hugging Face cache) and nothing else changes.

We classify the digit of the audio-visual digits' 8×8 images three ways: the backbone frozen
(a fixed feature extractor: only the heads train), the backbone fine-tuned (its weights train
too), and a logistic regression on the pixels, the baseline to beat.
"""

# %%
# The images as a tensor block
# ----------------------------
# ``ImageFeatures(output="tensor")`` gives ``(n, 1, 8, 8)`` arrays in [0, 1]; the encoder
# repeats grey images to the three channels the ResNet reads.
from transformers import ResNetConfig

from sklearn_mtml import ImageFeatures, MultiTaskNet
from sklearn_mtml.datasets import load_av_digits
from sklearn_mtml.nn.pretrained import PretrainedEncoder

X, Y, split = load_av_digits()
train, test = split == "train", split == "test"
images = ImageFeatures(output="tensor").fit(X["image"][train])
I_train, I_test = images.transform(X["image"][train]), images.transform(X["image"][test])
y_train, y_test = Y["digit"][train], Y["digit"][test]
print("image block:", I_train.shape)

tiny_resnet = ResNetConfig(embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1],
                           num_channels=3)

# %%
# Frozen and fine-tuned
# ---------------------
# Frozen (the default) means no gradients into the backbone, which stays in evaluation mode;
# ``cache_features=True`` runs each image through it once per fit instead of once per epoch.
# Fine-tuning (``freeze=False``) trains it with the rest of the network; a real checkpoint
# would get a smaller learning rate through a parameter group
# (``optimizer__param_groups=[("encoders.image.backbone.*", {"lr": 1e-4})]``).
scores = {}
for name, encoder in [
    ("frozen (random weights)", PretrainedEncoder(tiny_resnet, cache_features=True)),
    ("fine-tuned", PretrainedEncoder(tiny_resnet, freeze=False)),
]:
    net = MultiTaskNet(random_state=0, module__encoders={"image": encoder})
    net.fit({"image": I_train}, y_train)
    scores[name] = net.score({"image": I_test}, y_test)
    print(f"{name}: digit accuracy {scores[name]:.3f} ({len(net.history)} epochs)")

# %%
# The baseline: a logistic regression on the pixels
# -------------------------------------------------
from sklearn.linear_model import LogisticRegression

flat_train, flat_test = I_train.reshape(len(I_train), -1), I_test.reshape(len(I_test), -1)
scores["logistic regression on pixels"] = LogisticRegression(max_iter=2000).fit(
    flat_train, y_train).score(flat_test, y_test)
print(f"logistic regression: {scores['logistic regression on pixels']:.3f}")

# %%
# What it shows
# -------------
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(6, 2.6))
names = list(scores)
ax.barh(names, [scores[n] for n in names], color=["#999999", "#4c72b0", "#dd8452"])
for i, n in enumerate(names):
    ax.text(scores[n] + 0.01, i, f"{scores[n]:.3f}", va="center")
ax.set_xlim(0, 1.1)
ax.set_xlabel("test accuracy (digit)")
ax.invert_yaxis()
fig.tight_layout()
plt.show()

# %%
# A frozen backbone is only as good as its weights: with random ones its features separate
# the digits poorly, and only the heads learn. Fine-tuning trains the backbone itself and
# does much better, but it still loses to the logistic regression on these tiny 8×8 images,
# where a linear model on the pixels is hard to beat with 300 training images. Pretrained
# features pay off on real photographs, texts and recordings, with a real checkpoint.
# The same encoder takes token-id blocks for text models (with
# :class:`~sklearn_mtml.features.PretrainedTokenizer`) and waveform blocks for audio models
# (wav2vec 2.0, HuBERT, WavLM); see the "Pretrained models" page.
