#!/usr/bin/env python3
"""Run a factornet checkpoint in NumPy, from its tensors and metadata alone.

usage: fnet_numpy.py [--data DIR] [--predictions FILE] [--compare FILE] [--limit N] CHECKPOINT

Reads a checkpoint written by `fnet-train --save` (a safetensors file with factornet's
metadata), rebuilds every layer's matrix W (n_out, n_in) as factornet defines it (y = x·Wᵀ + b;
docs/design.md, docs/tt.md, docs/circulant.md, docs/lowrank.md, docs/sparse.md), runs the test
images of an IDX dataset through it in float64 and prints the test accuracy:

  dense:N        `weight` (N, n_in), `bias` (N); a pruned weight's U8 `weight_mask` applied
  tt:N           cores `core<k>` (r_k, m_k, n_k, r_{k+1}), m the output modes and n the input
                 modes, r_0 = r_d = 1; W[(i_0..i_{d-1}), (j_0..j_{d-1})] = Π_k G_k[:, i_k, j_k, :],
                 multi-indices row-major (the first mode most significant)
  lowrank:N      W = U·V, `U` (N, R), `V` (R, n_in)
  circ:N         `c` (N/b, n_in/b, b): block (p, q) is C[k, m] = c[p, q, (k - m) mod b]
  sparse:N       CSR: `row_ptr` (N + 1) and `col_idx` (nnz) I32, `values` (nnz), `bias` (N)
  relu, tanh, sigmoid; dropout:P (the identity at evaluation)

Any layer's `bias` is absent when its spec item says bias=0, and any F32 tensor may carry a U8
`<name>_mask` (pruning). Images are scaled as factornet scales them: the uint8 pixel times the
float32 1/255, in float32.

Options:
  --data DIR          the IDX files t10k-{images-idx3,labels-idx1}-ubyte[.gz] (default
                      $FNET_DATA, then /usr/share/datasets/fashion-mnist)
  --predictions FILE  write the predicted class of every test image, one per line
  --compare FILE      a file of predicted classes, one per line (fnet-train --predictions):
                      print how many agree; exit 1 if any differs, naming the first
  --limit N           only the first N test images
  --help

Exit status: 0 success, 1 a runtime error (a file that is not a factornet checkpoint, a tensor
missing or of the wrong shape or dtype, a layer kind this script does not know, unreadable data,
predictions that differ), 2 bad usage. Errors are one line on stderr:
`fnet_numpy: error: <what> (<where>)`.

As a module (Python 3 and NumPy only):

  import fnet_numpy
  net = fnet_numpy.load("model.safetensors")
  images, labels = fnet_numpy.load_idx("/usr/share/datasets/fashion-mnist", "t10k")
  logits = net(fnet_numpy.scale(images))       # (n, classes), float64
"""

import argparse
import gzip
import json
import os
import struct
import sys
import zlib

import numpy as np

PROG = "fnet_numpy"
DEFAULT_DATA = "/usr/share/datasets/fashion-mnist"
DTYPES = {"F32": np.dtype("<f4"), "I32": np.dtype("<i4"), "U8": np.dtype("u1")}
# src/data/dataset.c scales a pixel as (float)pixel * (1.0f / 255.0f)
PIXEL_SCALE = np.float32(1.0) / np.float32(255.0)


class FnetError(Exception):
    """A runtime error: `what` went wrong at `where` (a file, a tensor, a spec item)."""

    def __init__(self, what, where):
        super().__init__(f"{what} ({where})")
        self.what, self.where = what, where


# ---- safetensors ----------------------------------------------------------------------------


def read_safetensors(path):
    """The metadata (a dict of strings, None when absent) and the tensors (a dict name -> ndarray)
    of a safetensors file."""
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except OSError as e:
        raise FnetError(e.strerror or str(e), path) from None
    if len(blob) < 8:
        raise FnetError(f"not a safetensors file: {len(blob)} bytes, shorter than the 8-byte "
                        "header length", path)
    (n,) = struct.unpack("<Q", blob[:8])
    if n < 2 or 8 + n > len(blob):
        raise FnetError(f"not a safetensors file: a header length of {n} bytes does not fit the "
                        f"file's {len(blob)}", path)
    try:
        header = json.loads(blob[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise FnetError(f"not a safetensors file: the header is not JSON ({e})", path) from None
    if not isinstance(header, dict):
        raise FnetError("not a safetensors file: the header is not a JSON object", path)
    data = memoryview(blob)[8 + n:]
    meta = header.pop("__metadata__", None)
    if meta is not None and (not isinstance(meta, dict)
                             or not all(isinstance(v, str) for v in meta.values())):
        raise FnetError("__metadata__ is not an object of strings", path)
    tensors = {}
    for name, t in header.items():
        where = f"{path}: tensor '{name}'"
        if not isinstance(t, dict) or not {"dtype", "shape", "data_offsets"} <= t.keys():
            raise FnetError("not an object with dtype, shape and data_offsets", where)
        dtype = DTYPES.get(t["dtype"])
        shape, offsets = t["shape"], t["data_offsets"]
        if dtype is None:
            raise FnetError(f"dtype {t['dtype']!r} is not one of F32, I32, U8", where)
        if (not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape)
                or not isinstance(offsets, list) or len(offsets) != 2
                or not all(type(o) is int for o in offsets)):
            raise FnetError("shape or data_offsets is not a list of integers", where)
        begin, end = offsets
        want = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if not 0 <= begin <= end or end - begin != want:
            raise FnetError(f"data_offsets [{begin}, {end}] do not hold the {want} bytes of "
                            f"{t['dtype']} {shape}", where)
        if end > len(data):
            raise FnetError(f"data_offsets [{begin}, {end}] run past the {len(data)} bytes of "
                            "data: truncated", where)
        tensors[name] = np.frombuffer(data[begin:end], dtype=dtype).reshape(shape)
    return meta, tensors


# ---- the spec -------------------------------------------------------------------------------


class Item:
    """One spec item: kind, argument (a size N or dropout's P) and options."""

    def __init__(self, text, index):
        self.text, self.index = text, index
        parts = [p.strip() for p in text.split(":")]
        self.kind = parts[0]
        self.arg = parts[1] if len(parts) > 1 and "=" not in parts[1] else None
        self.opts = {}
        for p in parts[2 if self.arg is not None else 1:]:
            key, eq, value = p.partition("=")
            if not eq:
                raise FnetError(f"option '{p}' is not key=value", self.where)
            self.opts[key.strip()] = value.strip()

    @property
    def where(self):
        return f"spec item {self.index}: '{self.text}'"

    def size(self):
        """The item's size N."""
        if self.arg is None or not self.arg.isdigit() or int(self.arg) < 1:
            raise FnetError("expected a size N >= 1", self.where)
        return int(self.arg)

    def integer(self, key, default=None):
        value = self.opts.get(key)
        if value is None:
            if default is None:
                raise FnetError(f"no {key}=", self.where)
            return default
        if not value.isdigit() or int(value) < 1:
            raise FnetError(f"{key} must be an integer >= 1, got '{value}'", self.where)
        return int(value)

    def flag(self, key, default=True):
        value = self.opts.get(key)
        if value is None:
            return default
        if value not in ("0", "1"):
            raise FnetError(f"{key} must be 0 or 1, got '{value}'", self.where)
        return value == "1"

    def int_list(self, key):
        """An option `a1xa2x..` as a list of ints, or None when absent."""
        value = self.opts.get(key)
        if value is None:
            return None
        parts = [p.strip() for p in value.split("x")]
        if not all(p.isdigit() and int(p) >= 1 for p in parts):
            raise FnetError(f"{key} must be integers >= 1 joined by 'x', got '{value}'", self.where)
        return [int(p) for p in parts]


def parse_spec(spec):
    """The items of a model spec: comma-separated, whitespace allowed around separators."""
    return [Item(text.strip(), i) for i, text in enumerate(spec.split(","))]


# ---- layers ---------------------------------------------------------------------------------


class LayerTensors:
    """The tensors `layers.<i>.*` of one item, each fetched with its dtype and shape checked; an
    F32 tensor's `<name>_mask` (U8 0/1 of its shape) is applied to it."""

    def __init__(self, tensors, index, path, item):
        self.tensors, self.prefix, self.path, self.item = tensors, f"layers.{index}.", path, item
        self.used = set()

    def has(self, name):
        return self.prefix + name in self.tensors

    def get(self, name, dtype, shape):
        """Tensor `name` of dtype ("F32", "I32", "U8") and shape (None: any size on that axis)."""
        full = self.prefix + name
        where = f"{self.path}: tensor '{full}' of {self.item.where}"
        if full not in self.tensors:
            raise FnetError("missing tensor", where)
        t = self.tensors[full]
        self.used.add(full)
        if t.dtype != DTYPES[dtype]:
            got = [k for k, v in DTYPES.items() if v == t.dtype][0]
            raise FnetError(f"dtype {got}, expected {dtype}", where)
        if len(t.shape) != len(shape) or any(w is not None and w != g
                                             for g, w in zip(t.shape, shape)):
            want = "(" + ", ".join("?" if w is None else str(w) for w in shape) + ")"
            raise FnetError(f"shape {tuple(t.shape)}, expected {want}", where)
        if dtype == "F32" and self.has(name + "_mask"):
            mask = self.get(name + "_mask", "U8", t.shape)
            if mask.max(initial=0) > 1:
                raise FnetError("a mask holds a byte other than 0 and 1",
                                f"{self.path}: tensor '{full}_mask'")
            t = t * mask
        return t

    def bias(self, n_out):
        """The bias (n_out) when the item has one (bias=0 says it has none), else None."""
        return self.get("bias", "F32", (n_out,)) if self.item.flag("bias") else None

    def check_all_used(self):
        left = sorted(n for n in self.tensors if n.startswith(self.prefix) and n not in self.used)
        if left:
            raise FnetError(f"tensor '{left[0]}' is not part of a {self.item.kind} layer",
                            f"{self.path}: {self.item.where}")


class Linear:
    """y = x·Wᵀ + b in float64: W (n_out, n_in), b (n_out) or None."""

    def __init__(self, W, b):
        self.W = np.asarray(W, dtype=np.float64)
        self.b = None if b is None else np.asarray(b, dtype=np.float64)

    def __call__(self, x):
        y = x @ self.W.T
        return y if self.b is None else y + self.b


def dense_layer(item, n_in, T):
    """dense:N: W (N, n_in) as stored."""
    N = item.size()
    return Linear(T.get("weight", "F32", (N, n_in)), T.bias(N)), N


def tt_matrix(cores):
    """W (M, N) of TT or tensor-ring cores G_k (r_k, m_k, n_k, r_{k+1}): contract the ranks, close
    the ring (the trace over r_0 = r_d; a TT's is 1 x 1), then order the axes (m_0, n_0, ..,
    m_{d-1}, n_{d-1}) as (m_0..m_{d-1}, n_0..n_{d-1}) (docs/tt.md, docs/tn.md)."""
    prod = np.asarray(cores[0], dtype=np.float64)  # (r_0, m_0, n_0, r_1)
    for G in cores[1:]:  # (r_0, m_0, n_0, .., m_k, n_k, r_{k+1})
        prod = np.tensordot(prod, np.asarray(G, dtype=np.float64), axes=([-1], [0]))
    prod = np.trace(prod, axis1=0, axis2=-1)
    d = len(cores)
    prod = prod.transpose([2 * k for k in range(d)] + [2 * k + 1 for k in range(d)])
    M = int(np.prod([G.shape[1] for G in cores]))
    return prod.reshape(M, -1)


def cores_of(item, n_in, T, ring):
    """The cores core0..core{d-1} of a tt (ring False) or tr item, their modes and ranks checked
    against each other, the sizes and the item's in=, out=, ranks= and ring= (a checkpoint's spec
    names them all)."""
    N = item.size()
    d = 0
    while T.has(f"core{d}"):
        d += 1
    if d == 0:
        T.get("core0", "F32", (None if ring else 1, None, None, None))  # raises, naming it
    cores = [T.get(f"core{k}", "F32", (None, None, None, None)) for k in range(d)]
    where = f"{T.path}: {item.where}"
    m = [G.shape[1] for G in cores]
    n = [G.shape[2] for G in cores]
    r = [G.shape[0] for G in cores] + [cores[-1].shape[3]]
    for k in range(d - 1):
        if cores[k].shape[3] != cores[k + 1].shape[0]:
            raise FnetError(f"core{k} ends with rank {cores[k].shape[3]} but core{k + 1} starts "
                            f"with {cores[k + 1].shape[0]}", where)
    if not ring and (r[0] != 1 or r[-1] != 1):
        raise FnetError(f"the outer ranks are {r[0]} and {r[-1]}, not 1", where)
    if ring and r[0] != r[-1]:
        raise FnetError(f"the ring's ends have ranks {r[0]} and {r[-1]}", where)
    if ring and "ring" in item.opts and item.integer("ring") != r[0]:
        raise FnetError(f"ring={item.opts['ring']} but the cores' ring rank is {r[0]}", where)
    if int(np.prod(m)) != N or int(np.prod(n)) != n_in:
        raise FnetError(f"the cores map {int(np.prod(n))} -> {int(np.prod(m))}, the layer "
                        f"{n_in} -> {N}", where)
    for key, have in (("in", n), ("out", m), ("ranks", r[1:-1])):
        want = item.int_list(key)
        if want is not None and want != have:
            raise FnetError(f"{key}={'x'.join(map(str, want))} but the cores have "
                            f"{'x'.join(map(str, have))}", where)
    if not ring and "rank" in item.opts and any(x != item.integer("rank") for x in r[1:-1]):
        raise FnetError(f"rank={item.opts['rank']} but the cores have ranks "
                        f"{'x'.join(map(str, r[1:-1]))}", where)
    return cores


def tt_layer(item, n_in, T):
    """tt:N: cores core0..core{d-1} (r_0 = r_d = 1)."""
    return Linear(tt_matrix(cores_of(item, n_in, T, False)), T.bias(item.size())), item.size()


def tr_layer(item, n_in, T):
    """tr:N: a tensor ring, cores core0..core{d-1} with r_0 = r_d (docs/tn.md)."""
    return Linear(tt_matrix(cores_of(item, n_in, T, True)), T.bias(item.size())), item.size()


def factors_of(item, n_in, T, count_rank):
    """The factor<k> tensors of a tucker or cp item, outputs first: (dims_k, rank_k) each, the
    output modes the first ones whose sizes multiply to N (as the item's out= says), the rest the
    input modes multiplying to n_in."""
    N, where = item.size(), f"{T.path}: {item.where}"
    D = 0
    while T.has(f"factor{D}"):
        D += 1
    if D == 0:
        T.get("factor0", "F32", (None, None))  # raises, naming it
    F = [T.get(f"factor{k}", "F32", (None, count_rank)) for k in range(D)]
    dims = [f.shape[0] for f in F]
    q, prod = 0, 1
    while q < D and prod < N:
        prod *= dims[q]
        q += 1
    if prod != N or int(np.prod(dims[q:])) != n_in or q == D:
        raise FnetError(f"the factors' modes {'x'.join(map(str, dims))} do not split into the "
                        f"sizes {N} (outputs) and {n_in} (inputs)", where)
    for key, have in (("out", dims[:q]), ("in", dims[q:])):
        want = item.int_list(key)
        if want is not None and want != have:
            raise FnetError(f"{key}={'x'.join(map(str, want))} but the factors have "
                            f"{'x'.join(map(str, have))}", where)
    return [np.asarray(f, dtype=np.float64) for f in F], q


def tucker_layer(item, n_in, T):
    """tucker:N: core (T, S) and factor<k> (dims_k, ranks_k): W = core x_k factor_k, the core
    read as (t_0..t_{q-1}, s_0..s_{p-1}) (docs/tn.md)."""
    F, q = factors_of(item, n_in, T, None)
    ranks = [f.shape[1] for f in F]
    Tr, S = int(np.prod(ranks[:q])), int(np.prod(ranks[q:]))
    want = item.int_list("ranks")
    if want is not None and want != ranks:
        raise FnetError(f"ranks={'x'.join(map(str, want))} but the factors have "
                        f"{'x'.join(map(str, ranks))}", f"{T.path}: {item.where}")
    X = np.asarray(T.get("core", "F32", (Tr, S)), dtype=np.float64).reshape(ranks)
    for k, f in enumerate(F):  # mode k: (.., r_k, ..) -> (.., dims_k, ..)
        X = np.moveaxis(np.tensordot(f, X, axes=([1], [k])), 0, k)
    return Linear(X.reshape(item.size(), n_in), T.bias(item.size())), item.size()


def khatri_rao(F):
    """The Khatri-Rao product of factors (d_k, R): row (i_0, i_1, ..) is the product of rows."""
    K = F[0]
    for f in F[1:]:
        K = (K[:, None, :] * f[None, :, :]).reshape(-1, K.shape[1])
    return K


def cp_layer(item, n_in, T):
    """cp:N:rank=R: factor<k> (dims_k, R): W = KR(output factors) . KR(input factors)^T."""
    F, q = factors_of(item, n_in, T, item.integer("rank"))
    return Linear(khatri_rao(F[:q]) @ khatri_rao(F[q:]).T, T.bias(item.size())), item.size()


def lowrank_layer(item, n_in, T):
    """lowrank:N:rank=R: W = U·V, U (N, R), V (R, n_in)."""
    N, R = item.size(), item.integer("rank")
    U = np.asarray(T.get("U", "F32", (N, R)), dtype=np.float64)
    V = np.asarray(T.get("V", "F32", (R, n_in)), dtype=np.float64)
    return Linear(U @ V, T.bias(N)), N


def circulant_matrix(c):
    """W (P·b, Q·b) of c (P, Q, b): block (p, q) is the circulant C[k, m] = c[p, q, (k - m) mod b]
    (its first column is c[p, q]; docs/circulant.md)."""
    P, Q, b = c.shape
    k = np.arange(b)
    blocks = np.asarray(c, dtype=np.float64)[:, :, (k[:, None] - k[None, :]) % b]  # (P, Q, b, b)
    return blocks.transpose(0, 2, 1, 3).reshape(P * b, Q * b)


def circ_layer(item, n_in, T):
    """circ:N:block=B: c (N/B, n_in/B, B)."""
    N, b = item.size(), item.integer("block")
    if N % b or n_in % b:
        raise FnetError(f"block {b} does not divide both sizes {n_in} -> {N}",
                        f"{T.path}: {item.where}")
    return Linear(circulant_matrix(T.get("c", "F32", (N // b, n_in // b, b))), T.bias(N)), N


def sparse_layer(item, n_in, T):
    """sparse:N: the CSR pattern (row_ptr, col_idx) checked as factornet checks it on load, then
    W (N, n_in) with the stored values at their positions, zero elsewhere."""
    N = item.size()
    row_ptr = T.get("row_ptr", "I32", (N + 1,)).astype(np.int64)
    values = T.get("values", "F32", (None,))
    nnz = values.shape[0]
    col = T.get("col_idx", "I32", (nnz,)).astype(np.int64)
    where = f"{T.path}: {item.where}"
    if "nnz" in item.opts and item.integer("nnz") != nnz:
        raise FnetError(f"nnz={item.opts['nnz']} but the layer stores {nnz} values", where)
    if row_ptr[0] != 0 or row_ptr[-1] != nnz or np.any(np.diff(row_ptr) < 0):
        raise FnetError(f"row_ptr does not rise from 0 to nnz = {nnz}", where)
    if nnz and (col.min() < 0 or col.max() >= n_in):
        raise FnetError(f"a column index outside [0, {n_in})", where)
    rows = np.repeat(np.arange(N), np.diff(row_ptr))
    W = np.zeros((N, n_in))
    np.add.at(W, (rows, col), values.astype(np.float64))
    return Linear(W, T.get("bias", "F32", (N,))), N


def relu(x):
    return np.maximum(x, 0.0)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def identity(x):
    return x


LINEAR_KINDS = {"dense": dense_layer, "tt": tt_layer, "tr": tr_layer, "tucker": tucker_layer,
                "cp": cp_layer, "lowrank": lowrank_layer, "circ": circ_layer,
                "sparse": sparse_layer}
ELEMENTWISE_KINDS = {"relu": relu, "tanh": np.tanh, "sigmoid": sigmoid}


def dropout_check(item):
    """dropout:P, P in [0, 1): the identity at evaluation (inverted dropout scales in training)."""
    try:
        p = float(item.arg)
    except (TypeError, ValueError):
        p = -1.0
    if not 0.0 <= p < 1.0:
        raise FnetError(f"dropout's P must be in [0, 1), got '{item.arg}'", item.where)
    return identity


# ---- the network ----------------------------------------------------------------------------


class Network:
    """A factornet model rebuilt in NumPy: net(x) maps x (B, n_in) to logits (B, classes) in
    float64. `layers` holds one callable per spec item (Linear for the linear kinds)."""

    def __init__(self, spec, n_in, classes, layers):
        self.spec, self.n_in, self.classes, self.layers = spec, n_in, classes, layers

    def __call__(self, x):
        y = np.asarray(x, dtype=np.float64)
        if y.ndim != 2 or y.shape[1] != self.n_in:
            raise ValueError(f"x must be (B, {self.n_in}), got {y.shape}")
        for layer in self.layers:
            y = layer(y)
        return y

    def predict(self, x):
        """The predicted class of every row of x (argmax, the first on ties, as factornet)."""
        return np.argmax(self(x), axis=1)


def meta_count(meta, key, path):
    value = meta.get(key)
    if value is None or not value.isdigit() or int(value) < 1:
        raise FnetError(f"metadata '{key}' is {value!r}, expected an integer >= 1", path)
    return int(value)


def load(path):
    """The Network of a factornet checkpoint (FnetError when the file is not one)."""
    meta, tensors = read_safetensors(path)
    if meta is None:
        raise FnetError("no __metadata__: not a factornet checkpoint", path)
    if meta.get("format") != "factornet":
        raise FnetError(f"metadata 'format' is {meta.get('format')!r}, expected 'factornet'", path)
    if meta.get("version") != "1":
        raise FnetError(f"metadata 'version' is {meta.get('version')!r}; this script reads "
                        "version 1", path)
    spec = meta.get("spec")
    if not spec:
        raise FnetError("metadata has no 'spec'", path)
    n_in, classes = meta_count(meta, "input", path), meta_count(meta, "classes", path)
    layers, width = [], n_in
    for item in parse_spec(spec):
        T = LayerTensors(tensors, item.index, path, item)
        if item.kind in LINEAR_KINDS:
            layer, width = LINEAR_KINDS[item.kind](item, width, T)
        elif item.kind in ELEMENTWISE_KINDS:
            layer = ELEMENTWISE_KINDS[item.kind]
        elif item.kind == "dropout":
            layer = dropout_check(item)
        else:
            raise FnetError(f"unknown layer kind '{item.kind}'", f"{path}: {item.where}")
        T.check_all_used()
        layers.append(layer)
    # the optimizer's state and a training run's own (run.*, solver.*) are not the model's
    stray = sorted(n for n in tensors if not n.startswith(("optimizer.", "run.", "solver."))
                   and not (n.startswith("layers.") and n.split(".")[1].isdigit()
                            and int(n.split(".")[1]) < len(layers)))
    if stray:
        raise FnetError(f"tensor '{stray[0]}' belongs to no layer of the spec", path)
    if width != classes:
        raise FnetError(f"the model has {width} outputs but metadata 'classes' is {classes}", path)
    return Network(spec, n_in, classes, layers)


# ---- data -----------------------------------------------------------------------------------


def read_idx(path, rank_min, rank_max):
    """The uint8 array of an IDX file (gzip or raw): (count, item...) of rank rank_min..rank_max."""
    try:
        with open(path, "rb") as f:
            blob = f.read()
        if path.endswith(".gz"):
            blob = gzip.decompress(blob)
    except (OSError, EOFError, zlib.error) as e:
        raise FnetError(getattr(e, "strerror", None) or str(e), path) from None
    if len(blob) < 4 or blob[0] != 0 or blob[1] != 0 or blob[2] != 0x08:
        raise FnetError("not an IDX file of unsigned bytes (bad magic)", path)
    rank = blob[3]
    if not rank_min <= rank <= rank_max or len(blob) < 4 + 4 * rank:
        raise FnetError(f"rank {rank}, expected {rank_min}..{rank_max}", path)
    dims = struct.unpack(f">{rank}I", blob[4:4 + 4 * rank])
    size = int(np.prod(dims, dtype=np.int64))
    if len(blob) != 4 + 4 * rank + size:
        raise FnetError(f"{len(blob) - 4 - 4 * rank} data bytes, the header says {size}", path)
    return np.frombuffer(blob, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def idx_path(data_dir, name):
    """DIR/name.gz when it exists (as factornet prefers), else DIR/name."""
    gz = os.path.join(data_dir, name + ".gz")
    return gz if os.path.exists(gz) else os.path.join(data_dir, name)


def load_idx(data_dir, split="t10k"):
    """images (n, dim) uint8 and labels (n) uint8 of split "t10k" or "train" in data_dir."""
    images = read_idx(idx_path(data_dir, f"{split}-images-idx3-ubyte"), 2, 255)
    labels = read_idx(idx_path(data_dir, f"{split}-labels-idx1-ubyte"), 1, 1)
    if images.shape[0] != labels.shape[0]:
        raise FnetError(f"{images.shape[0]} images but {labels.shape[0]} labels",
                        f"--data {data_dir}")
    return images.reshape(images.shape[0], -1), labels


def scale(images):
    """x in [0, 1] as factornet computes it: float32(pixel) · float32(1/255), in float32."""
    return images.astype(np.float32) * PIXEL_SCALE


# ---- the command line -----------------------------------------------------------------------


class Usage(argparse.ArgumentParser):
    """argparse with factornet's error contract: one line, exit 2."""

    def error(self, message):
        fail(message, "command line", 2)


def fail(what, where, code=1):
    print(f"{PROG}: error: {what} ({where})", file=sys.stderr)
    sys.exit(code)


def read_classes(path):
    """A file of predicted classes, one integer per line."""
    try:
        with open(path) as f:
            lines = f.read().split("\n")
    except (OSError, UnicodeDecodeError) as e:
        raise FnetError(getattr(e, "strerror", None) or str(e), f"--compare {path}") from None
    if lines and lines[-1] == "":
        lines.pop()
    for i, line in enumerate(lines):
        if not line.strip().isdigit():
            raise FnetError(f"line {i + 1} is '{line[:40]}', not a class",
                            f"--compare {path}")
    return np.array([int(line) for line in lines], dtype=np.int64)


def write_classes(path, classes):
    """One class per line into path, via a temporary file renamed over it when path is (or
    will be) a regular file."""
    text = "".join(f"{c}\n" for c in classes)
    try:
        if os.path.exists(path) and not os.path.isfile(path):
            with open(path, "w") as f:
                f.write(text)
            return
        tmp = f"{path}.tmp.{os.getpid()}"
        try:
            with open(tmp, "w") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError as e:
        raise FnetError(e.strerror or str(e), f"--predictions {path}") from None


def main(argv=None):
    p = Usage(prog="fnet_numpy.py", add_help=False)
    p.add_argument("checkpoint", nargs="?")
    p.add_argument("--data", metavar="DIR")
    p.add_argument("--predictions", metavar="FILE")
    p.add_argument("--compare", metavar="FILE")
    p.add_argument("--limit", metavar="N", type=int)
    p.add_argument("-h", "--help", action="store_true")
    a = p.parse_args(argv)
    if a.help:
        print(__doc__.strip())
        return 0
    if a.checkpoint is None:
        fail("a checkpoint is required (see --help)", "command line", 2)
    if a.limit is not None and a.limit < 1:
        fail(f"must be >= 1, got {a.limit}", "--limit", 2)
    data_dir = a.data or os.environ.get("FNET_DATA") or DEFAULT_DATA
    try:
        net = load(a.checkpoint)
        images, labels = load_idx(data_dir, "t10k")
        if a.limit is not None:
            images, labels = images[:a.limit], labels[:a.limit]
        if images.shape[1] != net.n_in:
            raise FnetError(f"the images have {images.shape[1]} values, the model takes "
                            f"{net.n_in}", f"--data {data_dir}")
        if int(labels.max(initial=0)) >= net.classes:
            raise FnetError(f"the data has a label {int(labels.max())}, the model only "
                            f"{net.classes} classes", f"--data {data_dir}")
        pred = net.predict(scale(images))
        right = int(np.sum(pred == labels))
        print(f"model {net.spec}: {len(pred)} test images")
        print(f"test_acc {right / len(pred):.4f}  correct {right}/{len(pred)}")
        if a.predictions:
            write_classes(a.predictions, pred)
        if a.compare:
            theirs = read_classes(a.compare)
            if len(theirs) != len(pred) and not (a.limit and len(theirs) > len(pred)):
                raise FnetError(f"{len(theirs)} predictions for {len(pred)} test images",
                                f"--compare {a.compare}")
            theirs = theirs[:len(pred)]
            same = int(np.sum(theirs == pred))
            print(f"compare: {same} of {len(pred)} predictions agree with {a.compare}")
            if same != len(pred):
                i = int(np.flatnonzero(theirs != pred)[0])
                raise FnetError(f"{len(pred) - same} of {len(pred)} predictions differ, the "
                                f"first at index {i} (here {pred[i]}, there {theirs[i]})",
                                f"--compare {a.compare}")
    except FnetError as e:
        sys.stdout.flush()
        fail(e.what, e.where)
    return 0


if __name__ == "__main__":
    sys.exit(main())
