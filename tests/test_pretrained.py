"""Pretrained Hugging Face models: the encoder factory, the tokenizer and the features.

Every model is a tiny configuration with random weights (nothing is downloaded); the local
directory path is exercised with ``save_pretrained`` into ``tmp_path``.
"""

from __future__ import annotations

import copy
import pickle
import tempfile

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")

from sklearn.base import clone  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import Pipeline, make_pipeline  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from sklearn_mtml import ModalityBlocks, ModalityFusion, MultiTaskNet  # noqa: E402
from sklearn_mtml.features import PretrainedFeatures, PretrainedTokenizer  # noqa: E402
from sklearn_mtml.nn.pretrained import (  # noqa: E402
    PretrainedEncoder,
    PretrainedModule,
    model_to_block_ids,
)

WORDS = ["a", "lovely", "dress", "the", "runs", "small", "colour", "fits", "well", "poor",
         "fabric", "great", "size", "too", "big"]


def resnet_config():
    return transformers.ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1],
                                     num_channels=3)


def vit_config():
    return transformers.ViTConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                  intermediate_size=32, image_size=16, patch_size=8)


def bert_config(vocab_size=50, **kwargs):
    return transformers.BertConfig(vocab_size=vocab_size, hidden_size=16, num_hidden_layers=1,
                                   num_attention_heads=2, intermediate_size=32,
                                   max_position_embeddings=32, **kwargs)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    """A tiny BERT WordPiece tokenizer (pad id 0) from a vocabulary file."""
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]))
    return transformers.BertTokenizerFast(str(path))


def images(n=24, c=3, size=16, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.rand(n, c, size, size).astype(np.float32)
    y = (X[:, 0, : size // 2].mean((1, 2)) > X[:, 0, size // 2:].mean((1, 2))).astype(int)
    return X, y


def token_ids(n=24, length=8, vocab=50, seed=0):
    rng = np.random.RandomState(seed)
    ids = rng.randint(5, vocab, size=(n, length))
    lengths = rng.randint(2, length + 1, size=n)
    ids[np.arange(length) >= lengths[:, None]] = 0
    return ids, (ids[:, 0] % 2).astype(int)


def net(block, encoder, **kwargs):
    return MultiTaskNet(max_epochs=2, batch_size=8, random_state=0,
                        module__encoders={block: encoder}, **kwargs)


# -- the encoder inside MultiTaskNet -----------------------------------------------------------
@pytest.mark.parametrize("make_config", [resnet_config, vit_config], ids=["resnet", "vit"])
def test_image_backbone_fits_and_predicts(make_config):
    X, y = images()
    model = net("image", PretrainedEncoder(make_config())).fit({"image": X}, y)
    proba = model.predict_proba({"image": X[:5]})
    assert proba.shape == (5, 2) and np.isfinite(proba).all()
    encoder = model.module_.encoders["image"]
    assert isinstance(encoder, PretrainedModule) and encoder.out_features == 16


def test_text_backbone_fits_and_predicts_on_declared_and_learned_blocks():
    ids, y = token_ids()
    enc = PretrainedEncoder(bert_config())
    assert enc.reads_tokens
    declared = ModalityBlocks({"text": ids}, vocab_sizes={"text": 50})
    model = net("text", enc).fit(declared, y)
    assert model.predict(declared).shape == (24,)
    # a plain dict of ids: the encoder reads tokens, so the block is declared as token ids
    model = net("text", enc).fit({"text": ids}, y)
    assert "text" in model.layout_.vocab_sizes
    assert model.module_.encoders["text"].kind == "tokens"


def test_frozen_backbone_is_unchanged():
    X, y = images()
    frozen = net("image", PretrainedEncoder(resnet_config())).fit({"image": X}, y)
    backbone = frozen.module_.encoders["image"].backbone
    before = copy.deepcopy(backbone.state_dict())
    heads = copy.deepcopy(frozen.module_.heads.state_dict())
    frozen.partial_fit({"image": X}, y)  # more training: still unchanged (batch norm too)
    after = backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not all(torch.equal(v, frozen.module_.heads.state_dict()[k])
                   for k, v in heads.items())  # the rest did train
    assert not any(p.requires_grad for p in backbone.parameters())
    frozen.module_.train()
    assert not backbone.training  # stays in eval mode while the rest trains
    assert frozen.module_.encoders["image"].training


def test_fine_tuning_changes_the_backbone_and_param_groups_set_its_lr():
    X, y = images()
    torch.manual_seed(0)
    model_instance = transformers.AutoModel.from_config(resnet_config())
    start = copy.deepcopy(model_instance.state_dict())
    pattern = "encoders.image.backbone.*"
    tuned = net("image", PretrainedEncoder(model_instance, freeze=False), lr=1e-2,
                optimizer__param_groups=[(pattern, {"lr": 1e-4})]).fit({"image": X}, y)
    names = [n for n, _ in tuned.module_.named_parameters()]
    assert any(n.startswith("encoders.image.backbone.") for n in names)
    groups = tuned.optimizer_.param_groups
    assert groups[0]["lr"] == 1e-4 and groups[1]["lr"] == 1e-2
    n_backbone = sum(1 for n in names if n.startswith("encoders.image.backbone."))
    assert len(groups[0]["params"]) == n_backbone
    trained = tuned.module_.encoders["image"].backbone.state_dict()
    changed = [k for k, v in start.items() if not torch.equal(v, trained[k])]
    assert changed
    # the instance given as the model is copied, never trained in place
    assert all(torch.equal(v, model_instance.state_dict()[k]) for k, v in start.items())


# -- token ids and padding ---------------------------------------------------------------------
@pytest.mark.parametrize("pooling", ["auto", "mean", "cls"])
def test_padding_does_not_change_a_text_embedding(pooling):
    torch.manual_seed(0)
    enc = PretrainedEncoder(bert_config(), pooling=pooling).make_encoder((12,), 64, 50)
    short = torch.tensor([[7, 9, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0]])
    longer = torch.tensor([[7, 9, 12, 0, 0, 0], [5, 6, 7, 8, 9, 10]])
    wide = PretrainedModule(enc.backbone, "tokens", (6,), pooling=pooling)
    a, b = enc(short), wide(longer)[:1]
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)
    assert a.shape == (1, 16) and a.abs().sum() > 0
    # an all-padding row (a missing text) encodes to zeros
    assert torch.equal(enc(torch.zeros(2, 12, dtype=torch.long)), torch.zeros(2, 16))


def test_models_whose_padding_id_is_not_zero_get_their_own_padding():
    torch.manual_seed(0)
    config = bert_config(pad_token_id=1)  # like RoBERTa: id 1 pads, id 0 is a real token
    enc = PretrainedEncoder(config).make_encoder((6,), 64, 50)
    raw = torch.tensor([[0, 9, 12, 1, 1, 1]])  # as the model's tokenizer writes it
    block = model_to_block_ids(raw, 1)
    assert block.tolist() == [[1, 9, 12, 0, 0, 0]]
    expected = enc.backbone(input_ids=raw, attention_mask=(raw != 1).long()).pooler_output
    np.testing.assert_allclose(enc(block).numpy(), expected.detach().numpy(), atol=1e-6)
    np.testing.assert_array_equal(model_to_block_ids(block.numpy(), 1), raw.numpy())


def test_encoder_decoder_models_use_their_encoder():
    config = transformers.T5Config(vocab_size=50, d_model=16, d_kv=8, d_ff=32, num_layers=1,
                                   num_heads=2)
    enc = PretrainedEncoder(config).make_encoder((6,), 64, 50)
    out = enc(torch.tensor([[5, 6, 7, 0, 0, 0]]))
    assert out.shape == (1, 16) and enc.pooling == "auto"


# -- images: size, channels, normalisation, local directories ----------------------------------
def test_images_are_resized_and_grey_images_repeated():
    enc = PretrainedEncoder(vit_config()).make_encoder((1, 20, 24), 64)
    assert enc.image_size == (16, 16)
    assert enc(torch.rand(2, 1, 20, 24)).shape == (2, 16)
    with pytest.raises(ValueError, match="channels"):
        PretrainedEncoder(vit_config()).make_encoder((2, 16, 16), 64)


def test_local_directory_with_image_processor(tmp_path):
    model = transformers.AutoModel.from_config(vit_config())
    model.save_pretrained(tmp_path)
    transformers.ViTImageProcessor(image_mean=[0.5, 0.5, 0.5],
                                   image_std=[0.25, 0.25, 0.25]).save_pretrained(tmp_path)
    enc = PretrainedEncoder(str(tmp_path), normalize="auto").make_encoder((3, 16, 16), 64)
    np.testing.assert_allclose(enc.pixel_mean.flatten().numpy(), 0.5)
    np.testing.assert_allclose(enc.pixel_std.flatten().numpy(), 0.25)
    x = torch.rand(3, 3, 16, 16)
    expected = model.eval()(pixel_values=(x - 0.5) / 0.25).pooler_output
    np.testing.assert_allclose(enc(x).numpy(), expected.detach().numpy(), atol=1e-5)
    # a configuration has no processor: ImageNet's statistics
    enc = PretrainedEncoder(vit_config(), normalize="auto").make_encoder((3, 16, 16), 64)
    np.testing.assert_allclose(enc.pixel_mean.flatten().numpy(), [0.485, 0.456, 0.406])


def test_project_gives_embed_dim_for_attention_fusion():
    X, y = images()
    ids, _ = token_ids()
    model = MultiTaskNet(
        fusion="attention", max_epochs=1, random_state=0, module__embed_dim=8,
        module__encoders={"image": PretrainedEncoder(resnet_config(), project=True),
                          "text": PretrainedEncoder(bert_config(), project=True)})
    model.fit(ModalityBlocks({"image": X, "text": ids}, vocab_sizes={"text": 50}), y)
    assert model.module_.encoders["image"].out_features == 8


# -- feature cache -----------------------------------------------------------------------------
def test_feature_cache_gives_the_same_fit_and_is_not_pickled():
    X, y = images()
    torch.manual_seed(0)
    instance = transformers.AutoModel.from_config(resnet_config())
    plain = net("image", PretrainedEncoder(instance)).fit({"image": X}, y)
    cached = net("image", PretrainedEncoder(instance, cache_features=True)).fit({"image": X}, y)
    np.testing.assert_allclose(cached.predict_proba({"image": X}),
                               plain.predict_proba({"image": X}), atol=1e-5)
    encoder = cached.module_.encoders["image"]
    assert len(encoder._cache) == len(X)  # each distinct row ran through the backbone once
    assert pickle.loads(pickle.dumps(encoder))._cache == {}
    with pytest.raises(ValueError, match="frozen"):
        PretrainedEncoder(resnet_config(), freeze=False,
                          cache_features=True).make_encoder((3, 16, 16), 64)


# -- the estimator contract: pickle, clone, parameters, errors ---------------------------------
def test_pickled_fitted_net_predicts_identically():
    ids, y = token_ids()
    X, _ = images()
    blocks = ModalityBlocks({"image": X, "text": ids}, vocab_sizes={"text": 50})
    model = MultiTaskNet(max_epochs=2, random_state=0, module__encoders={
        "image": PretrainedEncoder(vit_config(), freeze=False),
        "text": PretrainedEncoder(bert_config())}).fit(blocks, y)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict_proba(blocks), model.predict_proba(blocks))


def test_clone_and_parameters():
    enc = PretrainedEncoder(vit_config(), pooling="mean")
    model = net("image", enc)
    cloned = clone(model)
    copied = cloned.get_params()["module__encoders"]["image"]
    assert copied is not enc and copied.get_params()["pooling"] == "mean"
    for other in (copy.deepcopy(enc), pickle.loads(pickle.dumps(enc))):
        assert other.get_params().keys() == enc.get_params().keys()
        assert other.make_encoder((3, 16, 16), 64).out_features == 16
    assert repr(enc) == "PretrainedEncoder(<ViTConfig>, pooling='mean')"
    assert repr(PretrainedEncoder("org/name", freeze=False)) == \
        "PretrainedEncoder('org/name', freeze=False)"
    # per-block overrides through encoder_params, and unknown ones
    X, y = images(8)
    model = net("image", enc, module__encoder_params={"image": {"freeze": False}})
    model.fit({"image": X}, y)
    assert not model.module_.encoders["image"].freeze and enc.freeze
    with pytest.raises(ValueError, match="does not take"):
        enc.make_encoder((3, 16, 16), 64, dropout=0.1)


def test_missing_weights_say_how_to_obtain_them(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    X, y = images(8)
    name = "sklearn-mtml-tests/not-a-cached-model"
    with pytest.raises(OSError, match="hf download sklearn-mtml-tests/not-a-cached-model"):
        net("image", PretrainedEncoder(name, cache_dir=str(tmp_path))).fit({"image": X}, y)
    with pytest.raises(OSError, match="save_pretrained"):
        PretrainedEncoder(name).reads_tokens  # noqa: B018
    with pytest.raises(OSError, match="no such directory"):
        PretrainedEncoder(str(tmp_path / "missing" / "model")).make_encoder((3, 16, 16), 64)
    with pytest.raises(OSError, match="hf download"):
        PretrainedTokenizer(name).fit(["some text"])
    with pytest.raises(OSError, match="hf download"):
        PretrainedFeatures(name).fit(X)


def test_blocks_that_do_not_fit_the_model_are_errors():
    with pytest.raises(ValueError, match="reads token ids"):
        PretrainedEncoder(bert_config()).make_encoder((3, 16, 16), 64)
    with pytest.raises(ValueError, match="reads images"):
        PretrainedEncoder(vit_config()).make_encoder((8,), 64, 50)
    with pytest.raises(ValueError, match="knows 50 ids"):
        PretrainedEncoder(bert_config()).make_encoder((8,), 64, 80)
    with pytest.raises(ValueError, match="at most 32"):
        PretrainedEncoder(bert_config()).make_encoder((64,), 64, 50)
    with pytest.raises(TypeError, match="nn.Module can be passed"):
        PretrainedEncoder(torch.nn.Linear(2, 2)).make_encoder((2,), 64)


# -- PretrainedTokenizer -----------------------------------------------------------------------
def test_tokenizer_pads_with_zero_and_maps_missing_texts(tokenizer):
    texts = ["a lovely dress", None, "   ", "the dress runs small and fits too well", np.nan]
    tok = PretrainedTokenizer(tokenizer, max_length=6).fit(texts)
    ids = tok.transform(texts)
    assert ids.dtype == np.int64 and ids.shape == (5, 6)
    assert ids[0].tolist() == [2, 5, 6, 7, 3, 0]  # [CLS] a lovely dress [SEP] pad
    assert not ids[[1, 2, 4]].any()  # missing and blank texts: all padding
    assert ids[3, -1] == 3  # truncated, still ends with [SEP]
    assert tok.absent_items(texts).tolist() == [False, True, True, False, True]
    assert tok.vocabulary_size_ == len(tokenizer) and tok.pad_token_id_ == 0
    assert list(tok.get_feature_names_out()) == [f"token{i}" for i in range(6)]
    assert PretrainedTokenizer(tokenizer, max_length=None).fit(texts).max_length_ == 10  # 8 words


def test_tokenizer_swaps_a_nonzero_padding_id(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(["[CLS]", "[PAD]", "[UNK]", "[SEP]", "[MASK]", *WORDS]))
    raw_tok = transformers.BertTokenizerFast(str(path))
    assert raw_tok.pad_token_id == 1 and raw_tok.cls_token_id == 0
    tok = PretrainedTokenizer(raw_tok, max_length=6).fit(["a dress"])
    ids = tok.transform(["a dress"])
    assert ids.tolist() == [[1, 5, 7, 3, 0, 0]]  # [CLS]=0 becomes 1, padding 0
    # the encoder of a model with pad id 1 sees the tokenizer's own ids
    torch.manual_seed(0)
    enc = PretrainedEncoder(bert_config(vocab_size=len(raw_tok), pad_token_id=1)
                            ).make_encoder((6,), 64, tok.vocabulary_size_)
    raw = raw_tok(["a dress"], padding="max_length", max_length=6, return_tensors="pt")
    expected = enc.backbone(**{k: raw[k] for k in ("input_ids", "attention_mask")})
    np.testing.assert_allclose(enc(torch.as_tensor(ids)).numpy(),
                               expected.pooler_output.detach().numpy(), atol=1e-6)


def test_tokenizer_from_a_local_directory(tokenizer, tmp_path):
    tokenizer.save_pretrained(tmp_path)
    tok = PretrainedTokenizer(str(tmp_path), max_length=5).fit(["a dress"])
    assert tok.transform(["a dress"]).tolist() == [[2, 5, 7, 3, 0]]


def test_tokenizer_in_modality_fusion_declares_token_blocks(tokenizer):
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    texts = [" ".join(rng.choice(WORDS, size=rng.randint(1, 6))) for _ in range(30)]
    texts[3] = None
    df = pd.DataFrame({"text": texts, "x": rng.randn(30)})
    y = rng.randint(0, 2, size=30)
    fusion = ModalityFusion([("text", PretrainedTokenizer(tokenizer, max_length=8), "text"),
                             ("num", "passthrough", ["x"])])
    blocks = fusion.fit_transform(df)
    assert blocks.vocab_sizes == {"text": len(tokenizer)}
    assert blocks.masks["text"].tolist()[3] is False
    model = make_pipeline(fusion, MultiTaskNet(
        max_epochs=2, random_state=0,
        module__encoders={"text": PretrainedEncoder(bert_config(vocab_size=len(tokenizer)))}))
    model.fit(df, y)
    assert model.predict(df).shape == (30,)
    assert model[-1].layout_.vocab_sizes == {"text": len(tokenizer)}


# -- PretrainedFeatures ------------------------------------------------------------------------
def test_features_feed_a_scikit_learn_classifier():
    X, y = images(40)
    pipe = Pipeline([("embed", PretrainedFeatures(resnet_config(), batch_size=16)),
                     ("clf", LogisticRegression(max_iter=500))]).fit(X, y)
    assert pipe.predict(X).shape == (40,)
    Z = pipe[0].transform(X)
    assert Z.shape == (40, 16) and Z.dtype == np.float32
    np.testing.assert_allclose(pipe[0].transform(X[:7]), Z[:7], atol=1e-5)  # batching
    X[5] = 0  # a missing image
    assert not pipe[0].transform(X)[5].any()
    assert list(pipe[0].get_feature_names_out()[:2]) == ["pretrainedfeatures0",
                                                        "pretrainedfeatures1"]
    restored = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_array_equal(restored[0].transform(X), pipe[0].transform(X))


def test_features_of_texts(tokenizer):
    texts = ["a lovely dress", "poor fabric", None, "great size", "too big"] * 4
    y = np.array([1, 0, 0, 1, 0] * 4)
    pipe = make_pipeline(PretrainedTokenizer(tokenizer, max_length=8),
                         PretrainedFeatures(bert_config(vocab_size=len(tokenizer))),
                         LogisticRegression()).fit(texts, y)
    Z = pipe[:2].transform(texts)
    assert Z.shape == (20, 16) and not Z[2].any() and Z[0].any()
    with pytest.raises(ValueError, match="token ids"):
        PretrainedFeatures(bert_config()).fit(np.full((4, 8), 0.5))
    with pytest.raises(ValueError, match="reads token ids"):
        PretrainedFeatures(bert_config()).fit(images(4)[0])


# -- scikit-learn's common checks --------------------------------------------------------------
def _text_input(reason):
    return {name: reason for name in [
        "check_fit_score_takes_y", "check_estimators_overwrite_params",
        "check_dont_overwrite_parameters", "check_estimators_fit_returns_self",
        "check_readonly_memmap_input", "check_positive_only_tag_during_fit",
        "check_estimators_dtypes", "check_dtype_object", "check_pipeline_consistency",
        "check_estimators_pickle", "check_f_contiguous_array_estimator",
        "check_transformer_data_not_an_array", "check_transformer_general",
        "check_methods_sample_order_invariance", "check_methods_subset_invariance",
        "check_fit2d_1sample", "check_fit2d_1feature", "check_dict_unchanged",
        "check_fit_idempotent", "check_fit_check_is_fitted", "check_fit2d_predict1d",
        "check_n_features_in",
    ]}


_NUMBERS_FOR_TEXTS = (
    "the check passes a numeric X; PretrainedTokenizer takes one column of strings and "
    "rejects numbers by design (tested on real texts above)")
_FLOATS_FOR_IDS = (
    "the check passes random floats; PretrainedFeatures reads 4-D images or 2-D token ids "
    "(whole numbers) and rejects other 2-D input by design (tested on images and ids above)")


def _expected_failures(estimator):
    if isinstance(estimator, PretrainedTokenizer):
        table = _text_input(_NUMBERS_FOR_TEXTS)
        table["check_n_features_in_after_fitting"] = (
            "the input is one column of texts, not a feature matrix: n_features_in_ is not set")
        table["check_fit1d"] = ("a 1-D array is a valid column of texts; its numbers raise "
                                "TypeError, not ValueError")
        return table
    return {name: _FLOATS_FOR_IDS for name in EXPECTED_FEATURE_FAILURES}


#: checks PretrainedFeatures fails on the checks' random float matrices (see _FLOATS_FOR_IDS)
EXPECTED_FEATURE_FAILURES = [
    "check_fit_score_takes_y", "check_estimators_overwrite_params",
    "check_dont_overwrite_parameters", "check_estimators_fit_returns_self",
    "check_readonly_memmap_input", "check_estimators_dtypes", "check_dtype_object",
    "check_pipeline_consistency", "check_estimators_nan_inf", "check_estimators_pickle",
    "check_f_contiguous_array_estimator", "check_transformer_data_not_an_array",
    "check_transformer_general", "check_methods_sample_order_invariance",
    "check_methods_subset_invariance", "check_fit2d_1sample", "check_fit2d_1feature",
    "check_dict_unchanged", "check_fit_idempotent", "check_fit_check_is_fitted",
    "check_n_features_in", "check_n_features_in_after_fitting",
    "check_positive_only_tag_during_fit", "check_fit2d_predict1d",
]


def _checked_tokenizer():
    path = tempfile.mkdtemp()
    with open(f"{path}/vocab.txt", "w") as f:
        f.write("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]))
    return PretrainedTokenizer(transformers.BertTokenizerFast(f"{path}/vocab.txt"),
                               max_length=8)


@parametrize_with_checks([_checked_tokenizer(), PretrainedFeatures(bert_config())],
                         expected_failed_checks=_expected_failures)
def test_sklearn_compatible(estimator, check):
    check(estimator)


# -- audio backbones (waveforms, input_values) ---------------------------------------------------
def wav2vec2_config(**kwargs):
    return transformers.Wav2Vec2Config(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        conv_dim=(8, 8, 8), conv_stride=(5, 4, 4), conv_kernel=(10, 8, 8),
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, vocab_size=10, **kwargs)


def waveforms(n=24, samples=1600, seed=0):
    """Tones of two pitches, of different lengths (zero-padded at the end)."""
    rng = np.random.RandomState(seed)
    y = rng.randint(0, 2, n)
    t = np.arange(samples) / 8000.0
    X = np.sin(2 * np.pi * np.where(y, 880.0, 220.0)[:, None] * t) * rng.uniform(0.1, 2, (n, 1))
    lengths = rng.randint(samples // 2, samples + 1, n)
    X[np.arange(samples) >= lengths[:, None]] = 0
    return X.astype(np.float32), y


def test_audio_backbone_reads_waveforms_unscaled():
    X, y = waveforms()
    enc = PretrainedEncoder(wav2vec2_config())
    assert enc.reads_raw_input and not enc.reads_tokens
    model = net("audio", enc).fit({"audio": X, "tab": X[:, :4]}, y)
    assert "audio" not in model.input_stats_ and "tab" in model.input_stats_
    assert "audio" not in model.module_.scalers
    wide = model.module_.wide  # no linear map of raw samples; the tabular block keeps one
    assert [lin.in_features for lin in wide.linears] == [0, 4]
    module = model.module_.encoders["audio"]
    assert isinstance(module, PretrainedModule) and module.kind == "audio"
    assert module.out_features == 16
    with torch.no_grad():
        x = torch.from_numpy(X[:4])
        # each clip is normalised over its own samples: loudness does not change its features
        torch.testing.assert_close(module(3 * x), module(x), atol=1e-4, rtol=1e-4)
        silent = module(torch.zeros(2, X.shape[1]))
    assert torch.count_nonzero(silent) == 0  # a missing clip encodes to zeros
    proba = model.predict_proba({"audio": X[:5], "tab": X[:5, :4]})
    assert proba.shape == (5, 2) and np.isfinite(proba).all()


def test_audio_backbone_with_layer_norm_ignores_the_padding():
    # layer-normalised models get the attention mask of the valid samples: more trailing
    # zeros give the same features (group-normalised base models, like Hugging Face's own
    # pipelines, see the padding)
    X, y = waveforms(n=16)
    model = net("audio", PretrainedEncoder(wav2vec2_config(feat_extract_norm="layer",
                                                           do_stable_layer_norm=True)))
    model.fit({"audio": X}, y)
    module = model.module_.encoders["audio"]
    with torch.no_grad():
        x = torch.from_numpy(X[:3])
        padded = torch.cat([x, torch.zeros(3, 800)], 1)
        longer = PretrainedModule(module.backbone, "audio", (2400,))
        torch.testing.assert_close(longer(padded), module(x), atol=1e-4, rtol=1e-4)


def test_audio_backbone_rejects_blocks_that_are_not_waveforms():
    X, _ = images()
    with pytest.raises(ValueError, match=r"reads waveforms \(n, n_samples\)"):
        PretrainedEncoder(wav2vec2_config()).make_encoder(X.shape[1:], 64, None)


def test_audio_spectrogram_transformer_reads_spectrogram_blocks():
    config = transformers.ASTConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                    intermediate_size=32, max_length=64, num_mel_bins=32,
                                    patch_size=16, frequency_stride=8, time_stride=8)
    rng = np.random.RandomState(0)
    S = rng.randn(16, 64, 32).astype(np.float32)
    y = (S[:, :, :16].mean((1, 2)) > S[:, :, 16:].mean((1, 2))).astype(int)
    enc = PretrainedEncoder(config)
    assert enc.reads_raw_input
    model = net("spec", enc).fit({"spec": S}, y)
    assert model.module_.encoders["spec"].out_features == 16
    assert "spec" not in model.input_stats_
    assert model.predict_proba({"spec": S[:3]}).shape == (3, 2)
    with pytest.raises(ValueError, match=r"reads spectrograms \(n, frames, 32\)"):
        enc.make_encoder((64, 40), 64, None)
