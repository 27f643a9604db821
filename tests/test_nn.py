"""Pure-torch pieces: encoders, fusion modules and the assembled MultiTaskModule."""

from __future__ import annotations

import pytest
import torch

from sklearn_mtml.nn import ENCODERS, FUSIONS, MultiTaskModule
from sklearn_mtml.nn.encoders import make_encoder


@pytest.mark.parametrize(("kind", "shape"), [
    ("features", (7,)), ("sequence", (12, 5)), ("gru", (12, 5)), ("image", (1, 9, 9)),
])
def test_encoders_map_rows_to_embeddings(kind, shape):
    enc = make_encoder(shape, 16, kind)
    x = torch.randn(4, *shape)
    out = enc(x)
    assert out.shape == (4, enc.out_features) and enc.out_features == 16
    out.sum().backward()


@pytest.mark.parametrize("kind", ["sequence", "gru"])
def test_sequence_encoders_ignore_zero_padding(kind):
    torch.manual_seed(0)
    enc = make_encoder((12, 3), 8, kind).eval()
    x = torch.randn(1, 4, 3)
    short = torch.cat([x, torch.zeros(1, 2, 3)], dim=1)
    long = torch.cat([x, torch.zeros(1, 8, 3)], dim=1)
    # how much padding follows a clip must not change its embedding
    torch.testing.assert_close(enc(short), enc(long), rtol=1e-5, atol=1e-6)


def test_unknown_encoder_and_shape_fail_clearly():
    with pytest.raises(ValueError, match="Unknown encoder 'nope'"):
        make_encoder((3,), 4, "nope")
    with pytest.raises(ValueError, match="per-row shape"):
        make_encoder((1, 2, 3, 4), 4)
    assert set(ENCODERS) >= {"features", "sequence", "gru", "image"}


@pytest.mark.parametrize("fusion", [*FUSIONS, "late"])
def test_fusions_mask_absent_modalities(fusion):
    torch.manual_seed(0)
    m = MultiTaskModule({"a": (5,), "b": (8, 3)}, [1, 4], fusion=fusion,
                        encoders={"b": "gru"}).eval()
    blocks = {"a": torch.randn(6, 5), "b": torch.randn(6, 8, 3)}
    mask = torch.tensor([[1, 1], [1, 0], [0, 1], [1, 1], [1, 0], [0, 1]], dtype=torch.bool)
    outputs, weights = m(blocks, mask, return_weights=True)
    assert [o.shape for o in outputs] == [(6, 1), (6, 4)]
    if weights is not None:
        assert torch.allclose(weights[~mask], torch.zeros(()))
        assert torch.allclose(weights.sum(1), torch.ones(6))
    # an absent block's values must not change the outputs
    changed = {"a": blocks["a"].clone(), "b": blocks["b"].clone()}
    changed["b"][1] += 100.0
    again = m(changed, mask)
    for o, a in zip(outputs, again):
        assert torch.allclose(o[1], a[1], atol=1e-5)


def test_modality_dropout_only_in_training_and_keeps_one_block():
    torch.manual_seed(0)
    m = MultiTaskModule({"a": (3,), "b": (3,)}, [1], modality_dropout=0.9)
    mask = torch.ones(1000, 2, dtype=torch.bool)
    dropped = m._drop_modalities(mask)
    assert dropped.any(1).all() and (~dropped).any()
    with pytest.raises(ValueError, match="modality_dropout of block 'a' must be in"):
        MultiTaskModule({"a": (3,)}, [1], modality_dropout=1.0)
    per_block = MultiTaskModule({"a": (3,), "b": (3,)}, [1], modality_dropout={"b": 0.5})
    dropped = per_block._drop_modalities(mask)
    assert dropped[:, 0].all() and 0.4 < (~dropped[:, 1]).float().mean() < 0.6
    with pytest.raises(ValueError, match="modality_dropout names unknown blocks"):
        MultiTaskModule({"a": (3,)}, [1], modality_dropout={"z": 0.5})
    with pytest.raises(ValueError, match="Unknown fusion"):
        MultiTaskModule({"a": (3,)}, [1], fusion="nope")
    with pytest.raises(ValueError, match="encoders names unknown blocks"):
        MultiTaskModule({"a": (3,)}, [1], encoders={"z": "gru"})


def test_late_fusion_can_return_each_blocks_outputs():
    m = MultiTaskModule({"a": (3,), "b": (4,)}, [1, 2], fusion="late", block_loss_weight=1.0)
    outputs, per_block, used = m({"a": torch.randn(5, 3), "b": torch.randn(5, 4)},
                                 return_blocks=True)
    assert len(per_block) == 2 and [o.shape for o in per_block[1]] == [(5, 1), (5, 2)]
    assert used.shape == (5, 2)
    with pytest.raises(ValueError, match="block_loss_weight needs fusion='late'"):
        MultiTaskModule({"a": (3,), "b": (4,)}, [1], fusion="concat", block_loss_weight=1.0)
