"""Audit trail integrity: signed Merkle checkpoints, export bundles and their offline verification.

Pure of any server client (only hashlib, json and `cryptography`), so `modelreg audit
verify` runs with nothing but a bundle and a public key.
"""
