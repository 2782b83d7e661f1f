"""Generates the Python code for protos/ (`make protos`), or checks it is current.

Generated files are committed so that the services run without grpcio-tools;
`--check` regenerates into a scratch folder and fails when anything differs,
which is how `make test` catches a proto edited without regenerating.
"""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi", "__init__.py")


def generate(out_dir: Path) -> list[Path]:
    """Runs protoc for every .proto file; returns the generated files, relative."""
    proto_files = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    well_known = str(resources.files("grpc_tools") / "_proto")
    bin_dir = Path(sys.executable).parent
    args = [
        "protoc",
        f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
        f"-I{PROTOS}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        *proto_files,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    outputs: list[Path] = []
    for proto in proto_files:
        stem = Path(proto).with_suffix("")
        outputs += [stem.parent / f"{stem.name}{suffix}" for suffix in GENERATED_SUFFIXES[:4]]
        # Every folder that received code becomes a package.
        for folder in stem.parents:
            if folder != Path("."):
                (out_dir / folder / "__init__.py").touch()
                outputs.append(folder / "__init__.py")
    return sorted(set(outputs))


def committed_files(generated: list[Path]) -> set[Path]:
    """Generated-looking files now in the tree's generated packages."""
    folders = {ROOT / rel.parent for rel in generated if rel.name != "__init__.py"}
    return {
        p.relative_to(ROOT)
        for folder in folders
        for p in folder.iterdir()
        if p.is_file() and p.name.endswith(GENERATED_SUFFIXES[:4])
    }


def check() -> int:
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch)
        fresh = generate(out)
        stale = [
            str(rel)
            for rel in fresh
            if not (ROOT / rel).exists() or not filecmp.cmp(out / rel, ROOT / rel, shallow=False)
        ]
        extra = sorted(str(rel) for rel in committed_files(fresh) - set(fresh))
    if stale or extra:
        print("generated protobuf code is stale; run `make protos`:", file=sys.stderr)
        for name in stale + extra:
            print(f"  {name}", file=sys.stderr)
        return 1
    print(f"generated protobuf code is current ({len(fresh)} files)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the committed code is stale")
    if parser.parse_args().check:
        return check()
    generated = generate(ROOT)
    print(f"generated {len(generated)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
