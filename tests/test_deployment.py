"""The KubeRay manifest of docs/deployment.md (`docs/deploy/raycluster.yaml`) is a valid
RayCluster: checked against the CRD's own OpenAPI schema (KubeRay's `ray.io_rayclusters.yaml`,
v1, kept in tests/fixtures/kuberay with its commit), plus what Kubernetes would silently prune
(a field the schema does not declare: a typo) and what the gateway would silently ignore (an
environment variable that is not one of its settings)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from gateway.config import Settings

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "docs" / "deploy" / "raycluster.yaml"
SCHEMA = ROOT / "tests" / "fixtures" / "kuberay" / "raycluster-v1.schema.json"
# Read by Ray itself (node failure detection), or by Kubernetes for the pod's own address.
NOT_SETTINGS = {"RAY_health_check_period_ms", "RAY_health_check_failure_threshold", "POD_IP"}


def manifest() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(MANIFEST.read_text())
    return loaded


def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA.read_text())["schema"]
    return loaded


def undeclared(value: Any, node: dict[str, Any], path: str = "") -> Iterator[str]:
    """Paths of fields the schema does not declare (Kubernetes prunes them without a word)."""
    if isinstance(value, dict):
        if node.get("x-kubernetes-preserve-unknown-fields"):
            return
        properties = node.get("properties")
        extra = node.get("additionalProperties")
        for key, item in value.items():
            if properties is not None and key in properties:
                yield from undeclared(item, properties[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                yield from undeclared(item, extra, f"{path}.{key}")
            elif properties is not None:
                yield f"{path}.{key}"
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for index, item in enumerate(value):
            yield from undeclared(item, node["items"], f"{path}[{index}]")


def problems(document: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(schema())
    found = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]
    return found + [f"{path}: not in the schema" for path in undeclared(document, schema())]


def gateway_containers(document: dict[str, Any]) -> list[dict[str, Any]]:
    templates = [document["spec"]["headGroupSpec"]["template"]] + [
        group["template"] for group in document["spec"]["workerGroupSpecs"]
    ]
    return [c for t in templates for c in t["spec"]["containers"] if c["name"] == "gateway"]


def test_the_manifest_is_a_valid_raycluster() -> None:
    document = manifest()
    assert document["apiVersion"] == "ray.io/v1" and document["kind"] == "RayCluster"
    assert problems(document) == []


def test_the_check_catches_a_wrong_type_and_a_misspelt_field() -> None:
    wrong_type = copy.deepcopy(manifest())
    wrong_type["spec"]["workerGroupSpecs"][0]["replicas"] = "two"
    assert any("replicas" in p for p in problems(wrong_type))

    misspelt = copy.deepcopy(manifest())
    misspelt["spec"]["workerGroupSpecs"][0]["minReplica"] = 1
    assert problems(misspelt) == [".spec.workerGroupSpecs[0].minReplica: not in the schema"]


def test_every_node_runs_a_gateway_configured_with_real_settings() -> None:
    document = manifest()
    gateways = gateway_containers(document)
    assert len(gateways) == 1 + len(document["spec"]["workerGroupSpecs"])
    fields = set(Settings.model_fields)
    for container in gateways:
        names = {variable["name"] for variable in container["env"]}
        assert {"DATABASE_URL", "JWT_SECRET", "RAY_ADDRESS", "RAY_NAMESPACE"} <= names
        assert {n for n in names if n.lower() not in fields} <= NOT_SETTINGS
        assert container["readinessProbe"]["httpGet"]["path"] == "/api/health"
