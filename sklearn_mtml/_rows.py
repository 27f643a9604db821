"""Rows of a fit or a prediction as skorch datasets, and the batches ``get_iterator`` makes.

``MultiTaskNet`` moves its training data to the training device once per fit; a batch is an
``index_select`` of those tensors, not a collation of rows. :class:`DeviceRows` is that data
as a ``torch.utils.data.Dataset`` (so skorch's ``DataLoader`` can also read it row by row),
:class:`PredictRows` the input of a prediction, copied to the device a chunk at a time, and
:class:`RowBatches` the iterator ``MultiTaskNet.get_iterator`` returns for them.

A batch is ``(Xi, yi)`` as in skorch: ``Xi = (blocks, mask)`` (``blocks`` a dict of scaled
input tensors, ``mask`` the ``(n, M)`` presence of each block) and ``yi = (targets,
label_mask)`` (``None`` for a prediction).
"""

from __future__ import annotations

import mmap
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import numpy as np
import torch
from torch.utils.data import Dataset

from .lazy import BatchPlan, FileBlocks, make_loader, raise_failures

__all__ = ["DeviceRows", "FilePredictRows", "FileRows", "HostRows", "PredictRows",
           "RowBatches", "batch_spans", "is_memory_mapped"]

Batch = tuple[tuple[dict[str, torch.Tensor], torch.Tensor],
              "tuple[torch.Tensor, torch.Tensor] | None"]
#: ``(blocks, lengths) -> blocks``: decoded host tensors of files to scaled device features.
FilesToDevice = Callable[[dict[str, torch.Tensor], dict[str, torch.Tensor]],
                         dict[str, torch.Tensor]]


def batch_spans(n: int, size: int, drop_last: bool = False) -> list[tuple[int, int]]:
    """``(start, stop)`` of each batch of ``n`` rows; a last batch of one row joins the previous.

    A batch of one row breaks batch normalisation; ``drop_last`` drops a short last batch.
    """
    starts = list(range(0, n, size))
    if drop_last and starts and n - starts[-1] < size and len(starts) > 1:
        starts.pop()
        return [(s, s + size) for s in starts]
    if len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()
    return [(s, starts[i + 1] if i + 1 < len(starts) else n) for i, s in enumerate(starts)]


class DeviceRows(Dataset):
    """Rows of a fit's data, held as tensors on the training device.

    Parameters
    ----------
    blocks : mapping of str to Tensor
        Scaled input blocks, ``(N, *shape)`` each.
    mask : Tensor of bool, shape (N, M)
        Presence of each block per row.
    targets : Tensor of shape (N, T)
        Encoded targets.
    label_mask : Tensor of shape (N, T)
        Label weight of each row for each task (0 where missing).
    rows : Tensor of int64, optional
        The rows of this dataset (default: all ``N``).
    """

    def __init__(self, blocks: Mapping[str, torch.Tensor], mask: torch.Tensor,
                 targets: torch.Tensor, label_mask: torch.Tensor,
                 rows: torch.Tensor | None = None):
        self.blocks = dict(blocks)
        self.mask = mask
        self.targets = targets
        self.label_mask = label_mask
        self.rows = (torch.arange(mask.shape[0], device=mask.device) if rows is None
                     else rows.to(mask.device))

    @property
    def device(self) -> torch.device:
        """Where the tensors live."""
        return self.mask.device

    def subset(self, rows: np.ndarray | torch.Tensor) -> DeviceRows:
        """The same tensors restricted to ``rows`` (indices into the whole data)."""
        return DeviceRows(self.blocks, self.mask, self.targets, self.label_mask,
                          torch.as_tensor(rows, device=self.device))

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def take(self, positions: torch.Tensor | slice) -> Batch:
        """The batch of the rows at ``positions`` (into this dataset's rows)."""
        idx = self.rows[positions]
        return (({k: v.index_select(0, idx) for k, v in self.blocks.items()},
                 self.mask.index_select(0, idx)),
                (self.targets.index_select(0, idx), self.label_mask.index_select(0, idx)))

    def __getitem__(self, i: int) -> Any:
        """One row, unbatched (for a ``DataLoader``, whose collation adds the batch axis)."""
        r = self.rows[i]
        return (({k: v[r] for k, v in self.blocks.items()}, self.mask[r]),
                (self.targets[r], self.label_mask[r]))


def is_memory_mapped(arr: Any) -> bool:
    """Whether ``arr`` (or the array it is a view of) is backed by a memory-mapped file."""
    while arr is not None:
        if isinstance(arr, (np.memmap, mmap.mmap)):
            return True
        arr = getattr(arr, "base", None)
    return False


class _RowsOnDevice(Dataset):
    """What :class:`HostRows` and :class:`FileRows` share: row masks and targets on the device.

    The inputs stay on the host; ``to_device`` turns a batch of them into scaled device
    tensors. ``rows`` are this dataset's rows (indices into the whole data).
    """

    def __init__(self, mask: torch.Tensor, targets: torch.Tensor, label_mask: torch.Tensor,
                 to_device: Any, rows: np.ndarray | None = None):
        self.mask = mask
        self.targets = targets
        self.label_mask = label_mask
        self.to_device = to_device
        self.rows = np.arange(mask.shape[0]) if rows is None else np.asarray(rows)

    @property
    def device(self) -> torch.device:
        """Where batches go."""
        return self.mask.device

    def __len__(self) -> int:
        return len(self.rows)

    @staticmethod
    def _as_rows(rows: np.ndarray | torch.Tensor) -> np.ndarray:
        return rows.cpu().numpy() if isinstance(rows, torch.Tensor) else np.asarray(rows)

class HostRows(_RowsOnDevice):
    """Rows of a fit whose inputs stay on the host (e.g. memory-mapped) and stream per batch.

    Each batch gathers its rows from the host arrays (a memory-mapped file reads only those
    rows), copies them to the device (pinned, non-blocking on CUDA) and scales them there;
    targets and masks, which are small, live on the device.

    Parameters
    ----------
    blocks : mapping of str to ndarray
        Input blocks on the host, ``(N, *shape)`` each, unscaled.
    mask, targets, label_mask : Tensor
        As in :class:`DeviceRows`, on the device.
    to_device : callable
        ``blocks -> blocks``: host rows to scaled device tensors.
    rows : ndarray of int64, optional
        The rows of this dataset (default: all ``N``).
    """

    def __init__(self, blocks: Mapping[str, np.ndarray], mask: torch.Tensor,
                 targets: torch.Tensor, label_mask: torch.Tensor,
                 to_device: Callable[[dict[str, np.ndarray]], dict[str, torch.Tensor]],
                 rows: np.ndarray | None = None):
        super().__init__(mask, targets, label_mask, to_device, rows)
        self.blocks = dict(blocks)

    def subset(self, rows: np.ndarray | torch.Tensor) -> HostRows:
        """The same arrays restricted to ``rows`` (indices into the whole data)."""
        return HostRows(self.blocks, self.mask, self.targets, self.label_mask,
                        self.to_device, self._as_rows(rows))

    def take(self, positions: torch.Tensor | slice) -> Batch:
        """The batch of the rows at ``positions`` (into this dataset's rows), on the device."""
        idx = self.rows[positions.cpu().numpy() if isinstance(positions, torch.Tensor)
                        else positions]
        idx_t = torch.as_tensor(idx, device=self.device)
        return ((self.to_device({k: v[idx] for k, v in self.blocks.items()}),
                 self.mask.index_select(0, idx_t)),
                (self.targets.index_select(0, idx_t), self.label_mask.index_select(0, idx_t)))

    def __getitem__(self, i: int) -> Any:
        raise TypeError("Streamed rows are read in batches by MultiTaskNet's own iterator; "
                        "iterator_train cannot be a DataLoader class with streaming=True.")


class PredictRows(Dataset):
    """The input of a prediction, kept on the host and sent to the device a chunk at a time.

    Parameters
    ----------
    blocks : mapping of str to ndarray
        Validated input blocks.
    mask : ndarray of bool, shape (n, M)
        Presence of each block per row.
    to_device : callable
        ``(blocks, mask) -> (blocks, mask)``: host slices to scaled device tensors.
    """

    def __init__(self, blocks: Mapping[str, np.ndarray], mask: np.ndarray,
                 to_device: Callable[[dict[str, np.ndarray], np.ndarray], Any]):
        self.blocks = dict(blocks)
        self.mask = mask
        self.to_device = to_device

    def __len__(self) -> int:
        return int(self.mask.shape[0])

    def take(self, positions: slice) -> Batch:
        """The batch of a contiguous span of rows, on the device."""
        return (self.to_device({k: v[positions] for k, v in self.blocks.items()},
                               self.mask[positions]), None)

    def __getitem__(self, i: int) -> Any:
        raise TypeError("PredictRows is read in chunks by MultiTaskNet.get_iterator, not "
                        "row by row.")


def _decoded_tensors(source: FileBlocks, rows: np.ndarray
                     ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Decode ``rows`` of ``source`` in this process, as tensors."""
    blocks, lengths = source.decode(rows)
    return ({k: torch.from_numpy(v) for k, v in blocks.items()},
            {k: torch.from_numpy(v) for k, v in lengths.items()})


class FileRows(_RowsOnDevice):
    """Rows of a fit whose inputs are files (:class:`~sklearn_mtml.FileBlocks`).

    Like :class:`HostRows`, targets and masks live on the device and the inputs stay where
    they are; :class:`RowBatches` has each batch's files decoded in ``DataLoader`` workers,
    then ``to_device`` copies the decoded tensors to the device, runs the audio front end
    there and scales them.

    Parameters
    ----------
    source : FileBlocks
        The files.
    mask, targets, label_mask : Tensor
        As in :class:`DeviceRows`, on the device.
    to_device : callable
        ``(blocks, lengths) -> blocks``: decoded host tensors to scaled device features.
    rows : ndarray of int64, optional
        The rows of this dataset (default: all ``N``).
    """

    def __init__(self, source: FileBlocks, mask: torch.Tensor, targets: torch.Tensor,
                 label_mask: torch.Tensor, to_device: FilesToDevice,
                 rows: np.ndarray | None = None):
        super().__init__(mask, targets, label_mask, to_device, rows)
        self.source = source

    def subset(self, rows: np.ndarray | torch.Tensor) -> FileRows:
        """The same files restricted to ``rows`` (indices into the whole data)."""
        return FileRows(self.source, self.mask, self.targets, self.label_mask,
                        self.to_device, self._as_rows(rows))

    def finish(self, rows: np.ndarray, blocks: dict[str, torch.Tensor],
               lengths: dict[str, torch.Tensor]) -> Batch:
        """The batch of ``rows`` (into the whole data) from their decoded tensors."""
        idx_t = torch.as_tensor(rows, device=self.device)
        return ((self.to_device(blocks, lengths), self.mask.index_select(0, idx_t)),
                (self.targets.index_select(0, idx_t), self.label_mask.index_select(0, idx_t)))

    def take(self, positions: torch.Tensor | slice) -> Batch:
        """The batch of the rows at ``positions``, decoded in this process."""
        idx = self.rows[positions.cpu().numpy() if isinstance(positions, torch.Tensor)
                        else positions]
        return self.finish(idx, *_decoded_tensors(self.source, idx))

    def __getitem__(self, i: int) -> Any:
        raise TypeError("Rows of files are decoded in batches by MultiTaskNet's own iterator; "
                        "iterator_train cannot be a DataLoader class with FileBlocks.")


class FilePredictRows(Dataset):
    """The input of a prediction from files, decoded a chunk at a time in ``DataLoader`` workers.

    Parameters
    ----------
    source : FileBlocks
        The files.
    mask : ndarray of bool, shape (n, M)
        Presence of each block per row.
    to_device : callable
        ``(blocks, lengths) -> blocks``: decoded host tensors to scaled device features.
    device : torch.device
        Where batches go.
    """

    def __init__(self, source: FileBlocks, mask: np.ndarray, to_device: FilesToDevice,
                 device: torch.device):
        self.source = source
        self.mask = mask
        self.to_device = to_device
        self.device = device

    def __len__(self) -> int:
        return int(self.mask.shape[0])

    def finish(self, rows: np.ndarray, blocks: dict[str, torch.Tensor],
               lengths: dict[str, torch.Tensor]) -> Batch:
        """The batch of ``rows`` from their decoded tensors."""
        mask = torch.from_numpy(np.ascontiguousarray(self.mask[rows])).to(self.device)
        return (self.to_device(blocks, lengths), mask), None

    def take(self, positions: slice) -> Batch:
        """The batch of a contiguous span of rows, decoded in this process."""
        rows = np.arange(len(self))[positions]
        return self.finish(rows, *_decoded_tensors(self.source, rows))

    def __getitem__(self, i: int) -> Any:
        raise TypeError("FilePredictRows is read in chunks by MultiTaskNet.get_iterator, not "
                        "row by row.")


class RowBatches:
    """Batches of a :class:`DeviceRows`, :class:`HostRows`, :class:`PredictRows`, or of files.

    Batches are sliced (or gathered), not collated row by row; :class:`HostRows` batches
    are prepared one ahead in a background thread; the files of :class:`FileRows` and
    :class:`FilePredictRows` batches are decoded in the workers of a ``DataLoader``.

    Parameters
    ----------
    dataset : DeviceRows, HostRows or PredictRows
        The rows.
    batch_size : int
        Rows per batch (``-1``: all rows in one batch, as in skorch).
    shuffle : bool, default=False
        Draw a new order of the rows at each pass (torch's global generator).
    drop_last : bool, default=False
        Drop a short last batch.
    shard : (int, int), default=(0, 1)
        ``(rank, world_size)``: this process iterates over every ``world_size``-th row of
        the (shuffled) order, starting at ``rank`` (data-parallel training).
    pad : bool, default=False
        With several processes, repeat the first rows of the order so that every process
        gets as many rows (the same number of optimizer steps; training batches).
    loader : mapping, optional
        ``DataLoader`` arguments for batches of files (``num_workers``, ``pin_memory``,
        ``persistent_workers``, ``prefetch_factor``, ...); its workers are kept between
        passes unless ``persistent_workers=False``.
    """

    def __init__(self, dataset: DeviceRows | HostRows | PredictRows | FileRows
                 | FilePredictRows, batch_size: int,
                 shuffle: bool = False, drop_last: bool = False,
                 shard: tuple[int, int] = (0, 1), pad: bool = False,
                 loader: Mapping[str, Any] | None = None):
        self.dataset = dataset
        self.loader = dict(loader or {})
        self._plan: BatchPlan | None = None
        self._loader: Any = None
        self.batch_size = len(dataset) if batch_size == -1 else int(batch_size)
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer or -1, got {batch_size!r}.")
        if shuffle and isinstance(dataset, (PredictRows, FilePredictRows)):
            raise ValueError("Prediction rows are read in order: iterator_valid__shuffle must "
                             "be False.")
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.shard = (int(shard[0]), int(shard[1]))
        self.pad = bool(pad)

    def _n_local(self) -> int:
        n = len(self.dataset)
        rank, world = self.shard
        if world == 1:
            return n
        return -(-n // world) if self.pad else len(range(rank, n, world))

    def __len__(self) -> int:
        return len(batch_spans(self._n_local(), self.batch_size, self.drop_last))

    def _order(self) -> torch.Tensor | None:
        """The rows of this process, in order (``None``: all rows, as stored)."""
        n = len(self.dataset)
        order = torch.randperm(n) if self.shuffle else None
        rank, world = self.shard
        if world == 1:
            return order
        base = torch.arange(n) if order is None else order
        if self.pad and n % world:
            total = -(-n // world) * world
            base = base.repeat(-(-total // n))[:total]
        return base[rank::world]

    def __iter__(self) -> Iterator[Batch]:
        if isinstance(self.dataset, FilePredictRows):
            yield from self._decoded([
                np.arange(start, stop)
                for start, stop in batch_spans(len(self.dataset), self.batch_size)])
            return
        if isinstance(self.dataset, PredictRows):
            for start, stop in batch_spans(len(self.dataset), self.batch_size, self.drop_last):
                yield self.dataset.take(slice(start, stop))
            return
        order = self._order()
        spans = batch_spans(self._n_local(), self.batch_size, self.drop_last)
        if isinstance(self.dataset, FileRows):
            rows = self.dataset.rows
            yield from self._decoded([rows[a:b] if order is None else rows[order[a:b].numpy()]
                                      for a, b in spans])
            return
        if isinstance(self.dataset, HostRows):
            yield from self._prefetched(order, spans)
            return
        if order is not None:
            order = order.to(self.dataset.device)
        for start, stop in spans:
            yield self.dataset.take(slice(start, stop) if order is None else order[start:stop])

    def _prefetched(self, order: torch.Tensor | None, spans: list[tuple[int, int]]
                    ) -> Iterator[Batch]:
        """Host batches, each gathered and copied while the previous one trains."""
        dataset = cast(HostRows, self.dataset)
        positions: list[torch.Tensor | slice] = [
            slice(a, b) if order is None else order[a:b] for a, b in spans]
        if not positions:
            return
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(dataset.take, positions[0])
            for nxt in positions[1:]:
                batch = pending.result()
                pending = pool.submit(dataset.take, nxt)
                yield batch
            yield pending.result()

    def _decoded(self, batches: list[np.ndarray]) -> Iterator[Batch]:
        """Batches of files: decoded in ``DataLoader`` workers, finished on the device."""
        dataset = cast("FileRows | FilePredictRows", self.dataset)
        if self._loader is None:
            self._plan = BatchPlan()
            self._loader = make_loader(dataset.source, self._plan, **self.loader)
        assert self._plan is not None
        self._plan.batches = batches
        for rows, blocks, lengths in raise_failures(self._loader):
            yield dataset.finish(rows.numpy(), blocks, lengths)
