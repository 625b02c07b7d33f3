"""Re-fetch the GraphiQL page's vendored assets (schema/graphiql/) from the npm registry.

    python scripts/fetch_graphiql.py           write the pinned files and vendor.json
    python scripts/fetch_graphiql.py --check   compare the committed files with the registry's

`npm pack` downloads each pinned tarball (npm checks it against the registry's
integrity hash) into a temporary directory; the files the page needs and each
package's license are copied out unchanged, and `vendor.json` records where every
file came from with its SHA-256 (tests/test_graphiql.py checks the committed files
against it and the served files against the committed ones). To upgrade, change a
version here, run the script, and run tests/test_graphiql.py.

GraphiQL stays on 3.x: it is the last line with a UMD build that runs without a
bundler (4.x deprecates it, 5.x ships only ES modules with Monaco).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

TARGET = Path(__file__).resolve().parent.parent / "schema" / "graphiql"
MANIFEST = "vendor.json"

# package: (version, {path in the tarball (under package/): name in TARGET})
PACKAGES: dict[str, tuple[str, dict[str, str]]] = {
    "graphiql": (
        "3.8.3",
        {
            "graphiql.min.js": "graphiql.min.js",
            "graphiql.min.css": "graphiql.min.css",
            "LICENSE": "LICENSE.graphiql.txt",
        },
    ),
    "react": (
        "18.3.1",
        {
            "umd/react.production.min.js": "react.production.min.js",
            "LICENSE": "LICENSE.react.txt",
        },
    ),
    "react-dom": (
        "18.3.1",
        {
            "umd/react-dom.production.min.js": "react-dom.production.min.js",
            "LICENSE": "LICENSE.react-dom.txt",
        },
    ),
    "graphql-ws": (
        "6.4.2",
        {
            "umd/graphql-ws.min.js": "graphql-ws.min.js",
            "LICENSE.md": "LICENSE.graphql-ws.md",
        },
    ),
}


def fetch(workdir: Path) -> tuple[dict[str, bytes], dict[str, object]]:
    """Every vendored file's bytes, and the manifest describing them."""
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is not on PATH")
    files: dict[str, bytes] = {}
    packages: dict[str, object] = {}
    described: dict[str, object] = {}
    for name, (version, wanted) in PACKAGES.items():
        result = subprocess.run(
            [npm, "pack", f"{name}@{version}", "--json", "--pack-destination", str(workdir)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            raise SystemExit(f"npm pack {name}@{version} failed:\n{result.stderr}")
        [info] = json.loads(result.stdout)
        packages[name] = {
            "version": version,
            "tarball": f"https://registry.npmjs.org/{name}/-/{info['filename']}",
            "integrity": info["integrity"],
        }
        with tarfile.open(workdir / info["filename"], "r:gz") as tar:
            for source, target in wanted.items():
                member = tar.extractfile(f"package/{source}")
                if member is None:
                    raise SystemExit(f"{name}@{version} has no {source}")
                data = member.read()
                files[target] = data
                described[target] = {
                    "package": f"{name}@{version}",
                    "source": source,
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "bytes": len(data),
                }
    return files, {"packages": packages, "files": described}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="compare only; exit 1 on any difference"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        files, manifest = fetch(Path(tmp))
    manifest_text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    if args.check:
        stale = [
            name
            for name, data in [*files.items(), (MANIFEST, manifest_text.encode())]
            if not (TARGET / name).is_file() or (TARGET / name).read_bytes() != data
        ]
        for name in stale:
            print(f"differs from the registry: {TARGET / name}", file=sys.stderr)
        return 1 if stale else 0
    TARGET.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (TARGET / name).write_bytes(data)
        print(f"wrote {TARGET / name} ({len(data)} bytes)")
    (TARGET / MANIFEST).write_text(manifest_text)
    print(f"wrote {TARGET / MANIFEST}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
