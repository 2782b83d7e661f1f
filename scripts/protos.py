"""Generates the Python code for protos/ (`make protos`), or checks it is current.

protoc writes a proto's code where its package says (`holdfast/booking/v1/`);
here it is moved under `holdfast/contracts/` (`holdfast.contracts.booking.v1`),
so that the generated contracts have a folder of their own, apart from the
services and the shared library, and the imports between generated modules
are rewritten to match. Only import lines (and the module name protoc gives
the message classes) are rewritten: the serialized descriptors, and with
them the wire names (`holdfast.booking.v1.BookingService`), are untouched.
(protoletariat does such rewriting, but pins protobuf below 6.)

Generated files are committed so that the services run without grpcio-tools;
`--check` regenerates into a scratch folder and fails when anything differs,
which is how `make test` catches a proto edited without regenerating.
"""

from __future__ import annotations

import argparse
import filecmp
import re
import sys
import tempfile
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi", "__init__.py")


# Where the generated packages go, as a package and as a folder.
CONTRACTS = "holdfast.contracts"
CONTRACTS_INIT = '''"""The API contracts in Python: generated from protos/ by `make protos`.

Never edited by hand (`make test` fails when they are stale). The wire names
stay the protos' own: `holdfast.booking.v1.BookingService` is served from
`holdfast.contracts.booking.v1.booking_pb2_grpc`.
"""
'''
# `from holdfast.common.v1 import money_pb2 as ...`, `import holdfast.common.v1.money_pb2`,
# and the module name in `BuildTopDescriptorsAndMessages(DESCRIPTOR, 'holdfast.x.v1.y_pb2', ...)`.
_IMPORT = re.compile(r"^(from |import )holdfast\.(?=\w+\.v\d+\b)", re.MULTILINE)
_MODULE_NAME = re.compile(r"(BuildTopDescriptorsAndMessages\(DESCRIPTOR, ')holdfast\.")
# In stubs (.pyi) types are spelt in full: `holdfast.common.v1.money_pb2.Money`.
_STUB_REFERENCE = re.compile(r"(?<![\w.])holdfast\.(?=\w+\.v\d+\.\w+_pb2\b)")


def _relocated(text: str, stub: bool) -> str:
    text = _IMPORT.sub(rf"\g<1>{CONTRACTS}.", text)
    text = _MODULE_NAME.sub(rf"\g<1>{CONTRACTS}.", text)
    return _STUB_REFERENCE.sub(f"{CONTRACTS}.", text) if stub else text


def generate(out_dir: Path) -> list[Path]:
    """Runs protoc for every .proto file and places the code under
    holdfast/contracts/ in `out_dir`; returns the generated files, relative."""
    proto_files = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    well_known = str(resources.files("grpc_tools") / "_proto")
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as raw_dir:
        raw = Path(raw_dir)
        args = [
            "protoc",
            f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
            f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
            f"-I{PROTOS}",
            f"-I{well_known}",
            f"--python_out={raw}",
            f"--mypy_out={raw}",
            f"--grpc_python_out={raw}",
            f"--mypy_grpc_out={raw}",
            *proto_files,
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        contracts = Path(*CONTRACTS.split("."))
        outputs: list[Path] = []
        for proto in proto_files:
            stem = Path(proto).with_suffix("")  # holdfast/booking/v1/booking
            placed = contracts / stem.relative_to("holdfast")
            for suffix in GENERATED_SUFFIXES[:4]:
                source = raw / stem.parent / f"{stem.name}{suffix}"
                target = out_dir / placed.parent / f"{placed.name}{suffix}"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(_relocated(source.read_text(), suffix.endswith(".pyi")))
                outputs.append(target.relative_to(out_dir))
            # Every folder that received code becomes a package.
            for folder in placed.parents:
                if folder not in (Path("."), Path("holdfast")):
                    init = out_dir / folder / "__init__.py"
                    init.write_text(CONTRACTS_INIT if folder == contracts else "")
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
