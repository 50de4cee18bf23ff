"""The Merkle tree against the RFC 6962 reference vectors (Certificate Transparency's test
data: 8 leaves, the root of every size, inclusion and consistency proofs), and proofs of
every leaf and every pair of sizes verifying, and failing once anything is changed."""

from __future__ import annotations

import random

from modelreg.merkle import (
    EMPTY_ROOT,
    Frontier,
    MerkleTree,
    leaf_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)

LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
HASHES = [leaf_hash(leaf) for leaf in LEAVES]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
INCLUSION = [  # (index, size, proof)
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip
CONSISTENCY = [  # (first, second, proof)
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip


def root(n: int) -> bytes:
    return bytes.fromhex(ROOTS[n])


def test_the_root_of_every_size_is_the_reference_root() -> None:
    assert EMPTY_ROOT == root(0) == root_of([])
    tree = MerkleTree(HASHES)
    frontier = Frontier()
    for n in range(1, 9):
        frontier.append(HASHES[n - 1])
        assert frontier.root() == root(n) == root_of(HASHES[:n]) == tree.root(n)
        assert MerkleTree(HASHES[:n]).root() == root(n)


def test_reference_inclusion_proofs() -> None:
    tree = MerkleTree(HASHES)
    for index, size, expected in INCLUSION:
        proof = tree.inclusion_proof(index, size)
        assert [p.hex() for p in proof] == expected
        assert MerkleTree(HASHES[:size]).inclusion_proof(index) == proof
        assert verify_inclusion(index, size, HASHES[index], proof, root(size))
        assert not verify_inclusion(index, size, HASHES[index], proof, root(size - 1))
        assert not verify_inclusion(index, size, HASHES[(index + 1) % size], proof, root(size))


def test_reference_consistency_proofs() -> None:
    tree = MerkleTree(HASHES)
    for first, second, expected in CONSISTENCY:
        proof = tree.consistency_proof(first, second)
        assert [p.hex() for p in proof] == expected
        assert verify_consistency(first, second, proof, root(first), root(second))
        if first != second:
            assert not verify_consistency(first, second, proof, root(first - 1 or 2), root(second))
            assert not verify_consistency(first, second, proof, root(first), root(second - 1))


def test_every_proof_of_random_trees_verifies_and_any_change_fails() -> None:
    rng = random.Random(6962)
    for n in [*range(1, 34), 100, 257]:
        hashes = [leaf_hash(i.to_bytes(4, "big") + rng.randbytes(rng.randrange(0, 12))) for i in range(n)]
        tree = MerkleTree(hashes)
        top = tree.root()
        assert top == root_of(hashes)
        for i in range(n):
            proof = tree.inclusion_proof(i)
            assert verify_inclusion(i, n, hashes[i], proof, top)
            assert not verify_inclusion(i, n, leaf_hash(b"forged"), proof, top)
            if proof:
                bent = [*proof[:-1], leaf_hash(b"x")]
                assert not verify_inclusion(i, n, hashes[i], bent, top)
            if n > 1:  # (the tree size is bound by the signed checkpoint, not by the proof)
                assert not verify_inclusion((i + 1) % n, n, hashes[i], proof, top)
        for m in range(1, n + 1, max(1, n // 12)):
            proof = tree.consistency_proof(m)
            assert verify_consistency(m, n, proof, tree.root(m), top)
            if m < n:
                assert not verify_consistency(m, n, proof, leaf_hash(b"old"), top)
                assert not verify_consistency(m, n, proof[:-1], tree.root(m), top)
