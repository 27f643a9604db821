"""Token-id blocks: the embedding encoders, their declaration, and per-component parameters."""

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone

from sklearn_mtml import ModalityBlocks, ModalityFusion, MultiTaskNet, TextFeatures
from sklearn_mtml.nn import MultiTaskModule
from sklearn_mtml.nn.encoders import TokenEncoder, make_encoder
from sklearn_mtml.nn.fusion import AttentionFusion
from sklearn_mtml.nn.heads import WideHeads

POOLINGS = TokenEncoder.poolings


@pytest.mark.parametrize("pooling", POOLINGS)
def test_padding_never_changes_the_encoding(pooling):
    torch.manual_seed(0)
    enc = TokenEncoder((8,), 8, vocab_size=30, pooling=pooling).eval()
    short = torch.tensor([[5, 9, 2, 0, 0, 0, 0, 0]])
    with torch.no_grad():
        a = enc(short)
        enc.embedding.weight[0].fill_(3.0)  # padding's row would change a mean if it entered
        b = enc(short)
        # the same tokens in a wider table position layout: only the padding differs
        c = enc(torch.tensor([[5, 9, 2, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1, 1, 1]]))[:1]
    np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_allclose(a, c, atol=1e-5)
    assert enc.out_features == a.shape[1] == 8


@pytest.mark.parametrize("pooling", POOLINGS)
def test_all_padding_row_encodes_to_zeros_without_nan(pooling):
    enc = TokenEncoder((4,), 8, vocab_size=10, pooling=pooling).eval()
    with torch.no_grad():
        out = enc(torch.tensor([[0, 0, 0, 0], [3, 4, 0, 0]]))
    assert torch.isfinite(out).all()
    np.testing.assert_array_equal(out[0].numpy(), 0.0)
    assert out[1].abs().sum() > 0


def test_mean_pooling_is_the_mean_of_token_embeddings():
    enc = TokenEncoder((4,), 6, vocab_size=10, pooling="mean").eval()
    with torch.no_grad():
        out = enc(torch.tensor([[3, 7, 7, 0]]))
    expected = enc.embedding.weight[[3, 7, 7]].mean(0)
    np.testing.assert_allclose(out[0].detach(), expected.detach(), atol=1e-6)


def test_token_encoder_rejects_bad_settings():
    with pytest.raises(ValueError, match="Unknown token pooling 'max'"):
        TokenEncoder((4,), 8, vocab_size=10, pooling="max")
    with pytest.raises(ValueError, match="multiple of num_heads"):
        TokenEncoder((4,), 10, vocab_size=10, pooling="transformer", num_heads=4)


def test_make_encoder_matches_block_kind_and_encoder():
    assert isinstance(make_encoder((5,), 8, vocab_size=12), TokenEncoder)
    with pytest.raises(ValueError, match="holds token ids.*'features' does not read them"):
        make_encoder((5,), 8, "features", vocab_size=12, block="text")
    with pytest.raises(ValueError, match="holds numbers.*'tokens' does not read them"):
        make_encoder((5,), 8, "tokens", block="tab")


def test_bag_of_words_wide_path_ignores_padding():
    wide = WideHeads([(4,)], [2], vocab_sizes=[10])
    with torch.no_grad():
        wide.linears[0].bag.weight.copy_(torch.arange(20.0).reshape(10, 2))
        out = wide([torch.tensor([[2, 4, 0, 0], [2, 4, 4, 4]])], torch.ones(2, 1, dtype=bool))
    gain = wide.gain
    np.testing.assert_allclose(out[0][0].numpy(), gain * np.array([6.0, 7.0]))  # (4,5)+(8,9)
    np.testing.assert_allclose(out[0][1].numpy(), gain * np.array([7.0, 8.0]))


# -- declaring token blocks ---------------------------------------------------------------
def test_modality_blocks_vocab_sizes_are_checked_and_kept_by_slicing():
    ids = np.array([[2, 3, 0], [4, 0, 0], [1, 1, 1]])
    Xb = ModalityBlocks({"text": ids, "tab": np.ones((3, 2))}, vocab_sizes={"text": 5})
    assert Xb[[0, 2]].vocab_sizes == {"text": 5}
    assert "tokens (vocabulary 5)" in repr(Xb)
    with pytest.raises(ValueError, match=r"ids in \[0, 4\], outside the vocabulary \[0, 4\)"):
        ModalityBlocks({"text": ids}, vocab_sizes={"text": 4})
    with pytest.raises(ValueError, match="integer token ids, got dtype float64"):
        ModalityBlocks({"text": ids.astype(float)}, vocab_sizes={"text": 5})
    with pytest.raises(ValueError, match="vocab_sizes names no block 'txt'"):
        ModalityBlocks({"text": ids}, vocab_sizes={"txt": 5})


def test_modality_fusion_declares_the_vocabulary_of_token_outputs():
    df = pd.DataFrame({"t": ["a good dress", "bad fit", None], "n": [1, 2, 3]})
    fus = ModalityFusion([("text", TextFeatures(output="sequence"), "t"),
                          ("tab", "passthrough", ["n"])])
    Xb = fus.fit_transform(df)
    size = fus.named_transformers_["text"].vocabulary_size_
    assert size == 2 + 4  # padding, unknown, good, dress, bad, fit
    assert Xb.vocab_sizes == {"text": size}  # the integer tabular block is not tokens


# -- the estimator on token ids -------------------------------------------------------------
def _keyword_task(n=400, seed=0, vocab=60, length=12):
    """Label = whether token 7 occurs; ids carry no order (a float reading cannot learn it)."""
    rng = np.random.RandomState(seed)
    lengths = rng.randint(3, length + 1, n)
    ids = np.zeros((n, length), dtype=np.int64)
    for i, k in enumerate(lengths):
        ids[i, :k] = rng.choice(np.setdiff1d(np.arange(2, vocab), [7]), k)
    y = rng.rand(n) < 0.5
    pos = rng.randint(0, lengths)
    ids[y, pos[y]] = 7
    return ids, y.astype(int)


@pytest.mark.parametrize("pooling", ["mean", "gru"])
def test_token_block_learns_a_keyword_that_a_numeric_reading_cannot(pooling):
    ids, y = _keyword_task()
    tr, te = slice(0, 300), slice(300, None)
    params = dict(random_state=0, max_epochs=20, batch_size=64, early_stopping=False)
    Xb = ModalityBlocks({"text": ids}, vocab_sizes={"text": 60})
    net = MultiTaskNet(module__encoder_params={"pooling": pooling}, **params)
    net.fit(Xb[np.arange(300)], y[tr])
    assert net.layout_.vocab_sizes == {"text": 60}
    tokens_acc = net.score(Xb[np.arange(300, 400)], y[te])
    numeric_acc = MultiTaskNet(**params).fit(ids[tr].astype(float), y[tr]).score(
        ids[te].astype(float), y[te])
    assert tokens_acc >= 0.9
    assert tokens_acc >= numeric_acc + 0.2


def test_encoder_name_declares_tokens_of_a_plain_dict_and_checks_ids_at_predict():
    ids, y = _keyword_task(n=120)
    net = MultiTaskNet(max_epochs=2, random_state=0, module__encoders={"text": "tokens"})
    net.fit({"text": ids, "tab": np.ones((120, 2))}, y)
    assert net.layout_.vocab_sizes == {"text": int(ids.max()) + 1}
    assert net.input_stats_.keys() == {"tab"}  # token ids are embedded, not scaled
    bad = ids.copy()
    bad[0, 0] = 999
    with pytest.raises(ValueError, match="Token block 'text' has ids in .*999"):
        net.predict({"text": bad, "tab": np.ones((120, 2))})


def test_token_model_survives_clone_and_pickle():
    ids, y = _keyword_task(n=120)
    Xb = ModalityBlocks({"text": ids}, vocab_sizes={"text": 60})
    net = MultiTaskNet(max_epochs=3, random_state=0).fit(Xb, y)
    again = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(again.predict(Xb), net.predict(Xb))
    assert not hasattr(clone(net), "layout_")


# -- per-component parameters ----------------------------------------------------------------
def test_encoder_params_per_block_and_shared():
    shapes = {"seq": (6, 3), "tab": (4,)}
    module = MultiTaskModule(shapes, [1], encoder_params={"seq": {"kernel_size": 3},
                                                          "dropout": 0.1})
    assert module.encoders["seq"].conv[0].kernel_size == (3,)
    assert module.encoders["seq"].dropout.p == 0.1
    with pytest.raises(ValueError, match=r"does not take \['module__encoder_params__kernel_size'"
                                         r"\].*encoder_params=\{'tab': \{\.\.\.\}\}"):
        MultiTaskModule(shapes, [1], encoder_params={"kernel_size": 3})


def test_fusion_params_and_fusion_classes():
    shapes = {"a": (4,), "b": (5,)}
    module = MultiTaskModule(shapes, [1], fusion="attention", fusion_params={"hidden": 7})
    assert module.fusion.score[0].out_features == 7
    by_class = MultiTaskModule(shapes, [1], fusion=AttentionFusion)
    assert isinstance(by_class.fusion, AttentionFusion)
    with pytest.raises(ValueError, match="does not take \\['module__fusion_params__width'\\]"):
        MultiTaskModule(shapes, [1], fusion="attention", fusion_params={"width": 3})
    with pytest.raises(TypeError, match="fusion must be a name or an nn.Module subclass"):
        MultiTaskModule(shapes, [1], fusion=3)


def test_estimator_accepts_a_fusion_class_and_an_encoder_class():
    rng = np.random.RandomState(0)
    X = {"a": rng.randn(60, 3), "b": rng.randn(60, 2, 4)}
    y = rng.randint(0, 2, 60)
    from sklearn_mtml.nn.encoders import GRUEncoder

    net = MultiTaskNet(fusion=AttentionFusion, max_epochs=2, random_state=0,
                       module__encoders={"b": GRUEncoder}).fit(X, y)
    assert isinstance(net.module_.encoders["b"], GRUEncoder)
    assert net.module_.fusion_name == "AttentionFusion"
    assert "AttentionFusion" in repr(net)


def test_any_module_instance_is_an_encoder_with_its_width_inferred():
    from torch import nn

    rng = np.random.RandomState(0)
    images = rng.rand(40, 3, 12, 12).astype("float32")
    y = (images[:, 0].mean((1, 2)) > images[:, 1].mean((1, 2))).astype(int)
    cnn = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(2))
    net = MultiTaskNet(max_epochs=2, random_state=0,
                       module__encoders={"img": cnn}).fit({"img": images}, y)
    encoder = net.module_.encoders["img"]
    assert encoder.out_features == 16
    assert encoder.module is not cnn  # a copy: every fit starts from the same weights
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(net)).predict({"img": images}),
                                  net.predict({"img": images}))
    with pytest.raises(ValueError, match="failed on a batch of shape \\(2, 3, 12, 12\\)"):
        MultiTaskNet(max_epochs=1, module__encoders={"img": nn.Linear(5, 2)}).fit(
            {"img": images}, y)
