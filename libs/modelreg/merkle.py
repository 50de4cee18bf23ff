"""Merkle trees as Certificate Transparency has them (RFC 6962 / RFC 9162 section 2.1).

- leaf hash: SHA-256(0x00 || leaf bytes); interior node: SHA-256(0x01 || left || right);
  the empty tree: SHA-256("").
- A tree of n leaves splits at k, the largest power of two below n: MTH(D[0:k]) on the
  left, MTH(D[k:n]) on the right.

`Frontier` keeps a growing tree in O(log n) space (the roots of its complete subtrees,
as the audit service stores it per topic-partition); `MerkleTree` holds every level of a
tree of known leaves to answer inclusion and consistency proofs; `verify_inclusion` and
`verify_consistency` are RFC 9162's algorithms (2.1.3.2, 2.1.4.2) and need only hashes.

Pure: hashlib only, so the offline verifier imports it without anything else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly below n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


@dataclass
class Frontier:
    """A tree that only grows, kept as the roots of its complete subtrees, largest first
    (one per set bit of `size`)."""

    size: int = 0
    nodes: list[bytes] = field(default_factory=list)

    def append(self, hash_: bytes) -> None:
        """Adds a leaf by its leaf hash."""
        size = self.size
        while size & 1:
            hash_ = node_hash(self.nodes.pop(), hash_)
            size >>= 1
        self.nodes.append(hash_)
        self.size += 1

    def extend(self, hashes: Iterable[bytes]) -> None:
        for hash_ in hashes:
            self.append(hash_)

    def root(self) -> bytes:
        if not self.nodes:
            return EMPTY_ROOT
        root = self.nodes[-1]
        for node in reversed(self.nodes[:-1]):
            root = node_hash(node, root)
        return root


class MerkleTree:
    """A tree over known leaf hashes, every level kept: proofs in O(log n)."""

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        levels = [list(leaf_hashes)]
        while len(levels[-1]) > 1:
            below = levels[-1]
            above = [node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
            if len(below) % 2:
                above.append(below[-1])  # a lone right edge is promoted: the RFC 6962 shape
            levels.append(above)
        self._levels = levels

    @property
    def size(self) -> int:
        return len(self._levels[0])

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        return self._hash(0, size) if size else EMPTY_ROOT

    def _hash(self, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi]) for a node of the tree: lo is aligned to the node's level."""
        level = (hi - lo - 1).bit_length()
        if hi == self.size or (hi - lo) == 1 << level:
            return self._levels[level][lo >> level]
        # A prefix tree's right edge (a root for a smaller size): not a node of this tree.
        k = _split(hi - lo)
        return node_hash(self._hash(lo, lo + k), self._hash(lo + k, hi))

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """PATH(index, D[0:size]) of RFC 9162 2.1.3.1."""
        size = self.size if size is None else size
        if not 0 <= index < size <= self.size:
            raise ValueError(f"no leaf {index} in a tree of {size}")
        if size == self.size:  # the siblings up the levels (a promoted node has none)
            path, i = [], index
            for level in self._levels[:-1]:
                if i ^ 1 < len(level):
                    path.append(level[i ^ 1])
                i >>= 1
            return path
        proof: list[bytes] = []
        lo, hi = 0, size
        while hi - lo > 1:
            k = _split(hi - lo)
            if index - lo < k:
                proof.append(self._hash(lo + k, hi))
                hi = lo + k
            else:
                proof.append(self._hash(lo, lo + k))
                lo += k
        return proof[::-1]

    def consistency_proof(self, first: int, second: int | None = None) -> list[bytes]:
        """PROOF(first, D[0:second]) of RFC 9162 2.1.4.1."""
        second = self.size if second is None else second
        if not 0 < first <= second <= self.size:
            raise ValueError(f"no consistency proof from {first} to {second}")
        return self._subproof(first, 0, second, True)

    def _subproof(self, m: int, lo: int, hi: int, whole: bool) -> list[bytes]:
        n = hi - lo
        if m == n:
            return [] if whole else [self._hash(lo, hi)]
        k = _split(n)
        if m <= k:
            return [*self._subproof(m, lo, lo + k, whole), self._hash(lo + k, hi)]
        return [*self._subproof(m - k, lo + k, hi, False), self._hash(lo, lo + k)]


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    frontier = Frontier()
    frontier.extend(leaf_hashes)
    return frontier.root()


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """Whether `proof` shows the leaf hash `leaf` at `index` of the tree of `size` with `root`."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    first: int, second: int, proof: Sequence[bytes], first_root: bytes, second_root: bytes
) -> bool:
    """Whether `proof` shows the tree of `second` leaves extends the tree of `first`."""
    if not 0 < first <= second:
        return False
    if first == second:
        return not proof and first_root == second_root
    path = list(proof)
    if first & (first - 1) == 0:  # a power of two: the old root is a node of the new tree
        path.insert(0, first_root)
    if not path:
        return False
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0
