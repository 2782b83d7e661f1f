"""The Dockerfile and the images deploy/ runs: every image is pinned, the
services run this version's image, the production image runs as a non-root
user and carries no development code, and .dockerignore lets in what the
package is built from."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator

from tests.support.deploy import (
    DEPLOY,
    KUBERNETES,
    ROOT,
    compose,
    compose_service,
    image_is_pinned,
    objects,
    objects_in,
    only_container,
)


def _dockerfile_stages() -> dict[str, tuple[str, str]]:
    """Each stage of the Dockerfile by name: (what it is FROM, its text)."""
    text = (DEPLOY / "Dockerfile").read_text()
    stages = {}
    for stage in re.split(r"^FROM ", text, flags=re.MULTILINE)[1:]:
        parent, _, name = stage.splitlines()[0].split()
        stages[name] = (parent, stage)
    return stages


def _stage_chain(name: str) -> list[str]:
    """The text of a stage and of every stage it is built FROM, itself first."""
    stages = _dockerfile_stages()
    chain = []
    while name in stages:
        parent, text = stages[name]
        chain.append(text)
        name = parent
    return chain


def _dockerfile_images() -> list[str]:
    """The images the Dockerfile starts from (not its own stages)."""
    stages = _dockerfile_stages()
    return [parent for parent, _ in stages.values() if parent not in stages]


def _all_images() -> Iterator[tuple[str, str]]:
    for name, service in compose()["services"].items():
        yield f"compose {name}", service["image"]
    for path in KUBERNETES.rglob("*.yaml"):
        for doc in objects_in(path):
            spec = doc.get("spec", {})
            pod = spec.get("template", {}).get("spec", {})
            for container in [*pod.get("containers", []), *pod.get("initContainers", [])]:
                yield f"{path.relative_to(DEPLOY)} {container['name']}", container["image"]
    for image in _dockerfile_images():
        yield "Dockerfile", image


def test_every_image_is_pinned_to_a_tag_that_is_not_latest() -> None:
    images = list(_all_images())
    assert len(images) > 10
    for where, image in images:
        assert image_is_pinned(image), f"{where}: {image} is not pinned"


def test_the_image_check_refuses_what_it_should() -> None:
    assert not image_is_pinned("postgres")
    assert not image_is_pinned("postgres:latest")
    assert not image_is_pinned("registry.example.com:5000/holdfast")
    assert image_is_pinned("registry.example.com:5000/holdfast:0.1.0")


def test_the_services_run_the_image_of_this_version() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert compose_service("booking")["image"] == f"holdfast:{version}"
    for deployment in objects("Deployment"):
        assert only_container(deployment)["image"] == f"holdfast:{version}"


def test_dockerfile_builds_a_non_root_image_that_writes_no_bytecode() -> None:
    # The last stage is what a plain `docker build` makes: the production image.
    assert list(_dockerfile_stages())[-1] == "runtime"
    runtime = "".join(_stage_chain("runtime"))
    user = re.findall(r"^USER (\S+)", runtime, flags=re.MULTILINE)
    assert user, "the runtime stage sets USER"
    uid = user[-1].split(":")[0]
    # Numeric, so that runAsNonRoot can check it; not root.
    assert uid.isdigit(), uid
    assert int(uid) != 0
    assert "PYTHONDONTWRITEBYTECODE=1" in runtime
    # Only the built virtualenv comes from the builder.
    assert re.findall(r"COPY --from=(\S+) (\S+)", runtime) == [("builder", "/opt/venv")]
    for deployment in [*objects("Deployment"), *objects("Job")]:
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsUser"] == int(uid)


def test_the_production_image_carries_no_development_code() -> None:
    """The services, the gateway and the shared library; not devtools (the
    local stack, the embedded engines, the fake Stripe), which has an image
    of its own for compose."""
    builder = "".join(_stage_chain("builder"))
    copied = " ".join(re.findall(r"^COPY (?!--from)(.+) \S+$", builder, re.M))
    assert {"holdfast", "services", "gateway"} <= set(copied.split())
    assert "devtools" not in copied
    assert "devtools" in "".join(_stage_chain("fake-stripe-builder"))
    fake = compose_service("fake-stripe")
    assert fake["build"]["target"] == "fake-stripe"
    assert fake["image"] != compose_service("booking")["image"]


def test_dockerignore_lets_in_what_the_package_is_built_from() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    assert {pattern.rstrip("*") for pattern in packages} <= allowed
    assert {"pyproject.toml", pyproject["project"]["readme"]} <= allowed
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", (DEPLOY / "Dockerfile").read_text(), re.M)
    for sources in copied:
        for source in sources.split():
            assert source in allowed, f"the Dockerfile copies {source}, which .dockerignore drops"
