"""Authentication against a running catalog replica with MODELREG_AUTH=required: API tokens
from a file of salted hashes, HS256/RS256/ES256 JWTs, groups for RBAC, mTLS, and every
refusal UNAUTHENTICATED with its reason."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from typer.testing import CliRunner

from modelreg.cli.main import app as cli
from modelreg.gen.catalog.v1 import catalog_pb2 as pb
from modelreg.gen.catalog.v1 import catalog_pb2_grpc
from modelreg.grpcutil.auth import AUTH_HEALTH_SERVICE
from modelreg.runtime.host import ServiceHost
from modelreg.runtime.settings import Settings
from modelreg.runtime.tls import ClientTls, secure_channel
from tests.authkit import JwtKeys, Pki, api_token, tampered
from tests.helpers import unique


@dataclass
class Secured:
    stub: catalog_pb2_grpc.CatalogServiceStub
    channel: grpc.aio.Channel
    token_file: Path
    keys: JwtKeys
    tokens: dict[str, str]
    ids: dict[str, str]


def bearer(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


@pytest.fixture(scope="module")
async def secured(
    settings: Settings, catalog_host: ServiceHost, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Secured]:
    """A second catalog API replica requiring credentials (the session's host projects).
    RBAC: group ml-editors edits every namespace; nobody else has a role."""
    from modelreg.catalog.main import spec

    directory = tmp_path_factory.mktemp("authn")
    token_file = directory / "tokens.json"
    keys = JwtKeys.create(directory)
    tokens, ids = {}, {}
    tokens["alice"], ids["alice"] = api_token(token_file, "alice", groups=["ml-editors"])
    tokens["nogroup"], ids["nogroup"] = api_token(token_file, "norole")
    tokens["revoked"], ids["revoked"] = api_token(token_file, "rita", groups=["ml-editors"])
    import datetime as dt

    tokens["expired"], ids["expired"] = api_token(
        token_file, "ed", expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    )
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MODELREG_AUTH", "required")
        env.setenv("MODELREG_AUTH_TOKEN_FILE", str(token_file))
        for name, value in keys.env().items():
            env.setenv(name, value)
        env.setenv("MODELREG_ROLES", "group:ml-editors=editor@*")
        env.delenv("MODELREG_ADMINS", raising=False)
        replica = ServiceHost(spec(), settings)
        await replica.start(project=False, port=0)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{replica.port}") as channel:
            yield Secured(
                catalog_pb2_grpc.CatalogServiceStub(channel), channel, token_file, keys, tokens, ids
            )
    finally:
        await replica.stop()


async def create_as(secured: Secured, metadata: list[tuple[str, str]]) -> pb.RegisteredModel:
    return await secured.stub.CreateRegisteredModel(
        pb.CreateRegisteredModelRequest(
            parent=f"namespaces/{unique('authn')}",
            registered_model_id=unique("m"),
            registered_model=pb.RegisteredModel(),
        ),
        metadata=metadata,
        timeout=30,
    )


async def refused(secured: Secured, metadata: list[tuple[str, str]]) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await create_as(secured, metadata)
    assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED, error.value.details()
    return error.value.details() or ""


async def test_valid_credentials_name_the_actor_and_carry_groups_to_rbac(secured: Secured) -> None:
    keys = secured.keys
    cases = {
        "alice": bearer(secured.tokens["alice"]),
        "hs-user": bearer(keys.sign("hs-user", groups=["ml-editors"])),
        "rs-user": bearer(keys.sign("rs-user", alg="RS256", groups=["ml-editors"])),
        "es-user": bearer(keys.sign("es-user", alg="ES256", groups="ml-editors")),
    }
    for principal, metadata in cases.items():
        created = await create_as(secured, metadata)
        assert created.created_by == principal
    # Authenticated but in no group with a role: RBAC refuses, after authentication.
    for metadata in (bearer(secured.tokens["nogroup"]), bearer(keys.sign("loner", alg="RS256"))):
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await create_as(secured, metadata)
        assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("missing", "missing credentials"),
        ("not bearer", "malformed authorization"),
        ("empty bearer", "malformed authorization"),
        ("jwt expired", "expired"),
        ("jwt not yet valid", "not valid yet"),
        ("jwt issued in the future", "not valid yet"),
        ("jwt wrong audience", "wrong audience"),
        ("jwt wrong issuer", "wrong issuer"),
        ("jwt tampered", "signature does not verify"),
        ("jwt other hs256 secret", "signature does not verify"),
        ("jwt unknown key id", "unknown key"),
        ("jwt signed by a stranger", "signature does not verify"),
        ("jwt no exp", "'exp'"),
        ("jwt no sub", "'sub'"),
        ("jwt alg none", "not accepted"),
        ("jwt malformed", "malformed JWT"),
        ("api token expired", "expired"),
        ("api token unknown id", "unknown API token"),
        ("api token wrong secret", "does not match"),
        ("api token malformed", "malformed API token"),
        ("unknown static token", "not valid"),
    ],
)
async def test_every_bad_credential_is_unauthenticated_with_its_reason(
    secured: Secured, case: str, reason: str
) -> None:
    keys, now = secured.keys, int(time.time())
    alice = secured.tokens["alice"]
    stranger_secret = b"another-secret-of-enough-length-0123456789abcdef"
    metadata = {
        "missing": [],
        "not bearer": [("authorization", f"Basic {alice}")],
        "empty bearer": [("authorization", "Bearer ")],
        # Beyond the 30 s leeway.
        "jwt expired": bearer(keys.sign("x", exp=now - 120, iat=now - 600, nbf=now - 600)),
        "jwt not yet valid": bearer(keys.sign("x", nbf=now + 600)),
        "jwt issued in the future": bearer(keys.sign("x", iat=now + 600)),
        "jwt wrong audience": bearer(keys.sign("x", aud="someone-else")),
        "jwt wrong issuer": bearer(keys.sign("x", alg="ES256", iss="https://evil.example")),
        "jwt tampered": bearer(tampered(keys.sign("x", alg="RS256"))),
        "jwt other hs256 secret": bearer(keys.sign("x", key=stranger_secret)),
        "jwt unknown key id": bearer(keys.sign("x", alg="RS256", kid="rsa-9", key=keys.stranger)),
        "jwt signed by a stranger": bearer(keys.sign("x", alg="RS256", kid="rsa-1", key=keys.stranger)),
        "jwt no exp": bearer(keys.sign("x", exp=None)),
        "jwt no sub": bearer(keys.sign(None, alg="ES256")),  # type: ignore[arg-type]
        "jwt alg none": bearer(_unsigned("x")),
        "jwt malformed": bearer("eyJub3QiOiJqc29uIn0.eyJ.@@@"),
        "api token expired": bearer(secured.tokens["expired"]),
        "api token unknown id": bearer("mr_000000000000_" + alice[16:]),
        "api token wrong secret": bearer(alice[:-6] + "AAAAAA"),
        "api token malformed": bearer("mr_short"),
        "unknown static token": bearer("not-a-known-token-at-all"),
    }[case]
    details = await refused(secured, metadata)
    assert reason in details
    assert alice not in details


async def test_a_revoked_api_token_is_refused_from_the_next_call(secured: Secured) -> None:
    token = secured.tokens["revoked"]
    assert (await create_as(secured, bearer(token))).created_by == "rita"
    result = CliRunner().invoke(
        cli, ["tokens", "revoke", "--file", str(secured.token_file), secured.ids["revoked"]]
    )
    assert result.exit_code == 0, result.output
    assert "revoked" in await refused(secured, bearer(token))
    listed = CliRunner().invoke(
        cli, ["tokens", "list", "--file", str(secured.token_file), "--output", "json"]
    )
    assert '"status": "revoked"' in listed.output
    assert token[16:] not in listed.output  # list never shows a secret


async def test_health_shows_whether_authentication_is_required(
    secured: Secured, catalog_channel: grpc.aio.Channel
) -> None:
    request = health_pb2.HealthCheckRequest(service=AUTH_HEALTH_SERVICE)
    required = await health_pb2_grpc.HealthStub(secured.channel).Check(request, timeout=30)
    assert required.status == health_pb2.HealthCheckResponse.SERVING
    # The session's own catalog runs with MODELREG_AUTH unset and no credentials: none.
    open_ = await health_pb2_grpc.HealthStub(catalog_channel).Check(request, timeout=30)
    assert open_.status == health_pb2.HealthCheckResponse.NOT_SERVING


def _unsigned(subject: str) -> str:
    import jwt

    now = int(time.time())
    claims = {"sub": subject, "iss": "https://issuer.test.modelreg", "aud": "modelreg-test", "exp": now + 60}
    return jwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]


async def test_mtls_names_the_caller_by_certificate_and_a_bearer_token_still_wins(
    settings: Settings, catalog_host: ServiceHost, tmp_path: Path
) -> None:
    from modelreg.catalog.main import spec
    from modelreg.client import AsyncRegistry, Endpoints

    pki = Pki.create(tmp_path)
    server_cert, server_key = pki.issue("catalog.modelreg", server=True)
    erin_cert, erin_key = pki.issue("erin")
    token_file = tmp_path / "tokens.json"
    alice, _ = api_token(token_file, "alice")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MODELREG_AUTH", "required")
        env.setenv("MODELREG_AUTH_TOKEN_FILE", str(token_file))
        env.setenv("MODELREG_TLS_CERT", str(server_cert))
        env.setenv("MODELREG_TLS_KEY", str(server_key))
        env.setenv("MODELREG_TLS_CLIENT_CA", str(pki.ca_file))
        env.delenv("MODELREG_ROLES", raising=False)
        env.delenv("MODELREG_ADMINS", raising=False)
        replica = ServiceHost(spec(), settings)
        await replica.start(project=False, port=0)
    try:
        address = f"127.0.0.1:{replica.port}"
        tls = ClientTls(pki.ca_file.read_bytes(), erin_cert.read_bytes(), erin_key.read_bytes())
        async with AsyncRegistry(Endpoints(catalog=address), tls=tls, bearer_token="", retries=0) as sdk:
            model = await sdk.catalog.register_model(f"{unique('mtls')}/m")
            assert model.created_by == "erin"
        async with AsyncRegistry(Endpoints(catalog=address), tls=tls, bearer_token=alice, retries=0) as sdk:
            model = await sdk.catalog.register_model(f"{unique('mtls')}/m")
            assert model.created_by == "alice"
        # Without a client certificate the TLS handshake itself fails: no call reaches a handler.
        no_cert = ClientTls(pki.ca_file.read_bytes())
        async with secure_channel(address, no_cert) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await catalog_pb2_grpc.CatalogServiceStub(channel).ListNamespaces(
                    pb.ListNamespacesRequest(), timeout=10
                )
            assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await replica.stop()
