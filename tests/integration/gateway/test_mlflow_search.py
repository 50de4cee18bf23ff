"""MLflow's search_registered_models through the gateway: each filter form, order_by, and
pagination at page sizes 1, 8 and 100 (MlflowClient adds the prompt clause to every search)."""

from __future__ import annotations

import uuid

import pytest
import requests

from tests.integration.gateway.conftest import Gateway


async def test_model_search_filters_order_and_pages(gateway: Gateway) -> None:
    from mlflow.exceptions import MlflowException

    client = gateway.client()
    run = uuid.uuid4().hex[:6]
    names = [f"s{run}-{i:02d}" for i in range(17)]
    for i, name in enumerate(names):
        tags = {"team": "red" if i % 2 else "blue"}
        if i % 3 == 0:
            tags["tier"] = "gold"
        await gateway.run(client.create_registered_model, name, tags=tags)
    await gateway.run(client.create_model_version, names[0], "runs:/abc/model")
    # Marked as a prompt: MlflowClient's own clause must leave it out of model searches.
    # (MlflowClient refuses to create one, so straight over HTTP.)
    prompt = await gateway.run(
        requests.post,
        f"{gateway.url}/api/2.0/mlflow/registered-models/create",
        json={"name": f"s{run}-prompt", "tags": [{"key": "mlflow.prompt.is_prompt", "value": "true"}]},
        headers={"Authorization": "Bearer t-alice"},
    )
    assert prompt.status_code == 200, prompt.text

    async def found(filter_string: str, **kwargs: object) -> list[str]:
        results = await gateway.run(client.search_registered_models, filter_string, **kwargs)
        return [m.name for m in results]

    mine = f"name LIKE 's{run}-%'"
    assert await found(mine) == names  # name order by default; the prompt is left out
    assert await found(f"name = '{names[3]}'") == [names[3]]
    assert await found(f"name ILIKE 'S{run}-0%'") == names[:10]
    assert await found(f"{mine} AND tags.team = 'red'") == names[1::2]
    assert await found(f"{mine} AND tags.`tier` != 'gold'") == [n for i, n in enumerate(names) if i % 3]
    assert await found(f"{mine} AND tag.tier LIKE 'go%'") == names[::3]
    assert await found(f"{mine} AND tags.Team = 'red'") == []  # a key the registry cannot hold
    assert await found(f"{mine}", order_by=["name DESC"]) == names[::-1]
    newest_first = await found(mine, order_by=["creation_timestamp DESC"])
    assert newest_first == names[::-1]

    first = (await gateway.run(client.search_registered_models, f"name = '{names[0]}'"))[0]
    assert [v.version for v in first.latest_versions] == ["1"]

    for size in (1, 8, 100):
        seen: list[str] = []
        token = None
        while True:
            page = await gateway.run(
                client.search_registered_models, mine, max_results=size, page_token=token
            )
            assert len(page) <= size
            seen += [m.name for m in page]
            token = page.token
            if not token:
                break
        assert seen == names, size

    with pytest.raises(MlflowException) as bad:
        await gateway.run(client.search_registered_models, "name = 'a' OR name = 'b'")
    assert bad.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as bad_order:
        await gateway.run(client.search_registered_models, mine, order_by=["size"])
    assert bad_order.value.error_code == "INVALID_PARAMETER_VALUE"
