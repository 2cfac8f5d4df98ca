"""docker-compose.yml, checked without Docker: one server by default, three with the cluster
profile, the right ports published (and the p2p port never), data on named volumes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")  # PyYAML: in the dev extras

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def ports(service: dict) -> set[tuple[str, str]]:
    """(host, container) pairs, from "6333:6333" entries."""
    return {tuple(str(entry).split(":")[-2:]) for entry in service.get("ports", [])}


def default_services(services: dict) -> list[str]:
    return [name for name, s in services.items() if not s.get("profiles")]


def test_up_starts_one_server(services):
    assert default_services(services) == ["node1"]
    assert ports(services["node1"]) == {("6333", "6333"), ("6334", "6334")}


def test_cluster_profile_adds_two_peers(services):
    cluster = [name for name, s in services.items() if "cluster" in s.get("profiles", [])]
    assert sorted(cluster) == ["node2", "node3"]
    assert services["node1"]["command"][-2:] == ["--uri", "http://node1:6335"]
    for name in cluster:
        assert services[name]["command"][-2:] == ["--bootstrap", "http://node1:6335"]
        assert services[name]["depends_on"]["node1"]["condition"] == "service_healthy"
        assert not services[name].get("ports")  # clients go through node1


def test_every_node_is_a_cluster_peer_with_the_api_key(services):
    for service in services.values():
        env = service["environment"]
        assert env["QDRANT__CLUSTER__ENABLED"] == "true"
        assert re.fullmatch(r"\$\{BOOKVEC_QDRANT_API_KEY:\?.+\}", env["QDRANT__SERVICE__API_KEY"])


def test_the_p2p_port_is_never_published(services):
    for service in services.values():
        assert not any("6335" in str(port) for port in service.get("ports", []))


def test_image_is_pinned_to_a_release_with_collection_metadata(services):
    for service in services.values():
        match = re.fullmatch(r"qdrant/qdrant:v(\d+)\.(\d+)\.(\d+)", service["image"])
        assert match, service["image"]
        assert tuple(map(int, match.groups()[:2])) >= (1, 16)


def test_each_node_keeps_its_data_on_its_own_named_volume(compose, services):
    mounts = [service["volumes"] for service in services.values()]
    assert all(len(m) == 1 and m[0].endswith(":/qdrant/storage") for m in mounts)
    names = [m[0].split(":")[0] for m in mounts]
    assert len(set(names)) == len(services)
    assert set(names) <= set(compose["volumes"])  # named volumes, not host paths
