#!/usr/bin/env python
"""Publish a posedive release to the Hugging Face Hub without the CLI.

    python hub_upload.py releases/market1501-posedive/1.0.0 --repo my-lab/market1501-posedive [--public]

A thin wrapper over ``posedive.hub.push_release`` (the code path of ``posedive push``): the repo is
created private unless ``--public`` is given, only missing files are uploaded, the commit is tagged
``v<version>`` and recorded in ``hub.json``. The commit id is printed on stdout. The token comes from
``hf auth login`` or ``HF_TOKEN``.
"""

from __future__ import annotations

import argparse
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("release", help="release folder holding manifest.json, or its URL (s3://..., any fsspec URL)")
    parser.add_argument("--repo", default=None, help="dataset repo ORG/NAME (default: the recipe's output.hub_repo)")
    parser.add_argument("--public", action="store_true", help="publish publicly (default: private; an existing public repo is refused)")
    parser.add_argument("--revision", default="main", help="branch to commit to")
    parser.add_argument("--commit-mb", type=int, default=2048, help="upload at most this many MB per commit")
    parser.add_argument("--commit-files", type=int, default=100, help="upload at most this many files per commit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for name in ("httpx", "httpx2"):  # one INFO line per HTTP request otherwise
        logging.getLogger(name).setLevel(logging.WARNING)

    from posedive.hub import push_release

    try:
        record = push_release(args.release, args.repo, private=not args.public, branch=args.revision,
                              max_commit_bytes=args.commit_mb * 1024**2, max_commit_files=args.commit_files)
    except (ValueError, OSError, RuntimeError) as error:
        hint = getattr(error, "hint", None)
        logging.getLogger("hub_upload").error("%s%s", error, f"; {hint}" if hint else "")
        return 2
    sys.stdout.write(record.commit_sha + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
