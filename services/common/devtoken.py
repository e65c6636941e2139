"""``python -m services.common.devtoken USER [--admin]``: print a development JWT."""

from __future__ import annotations

import argparse

from .auth import issue_token
from .settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description="Print a development JWT for Parley.")
    parser.add_argument("user", help="user id (also used as username unless --username)")
    parser.add_argument("--username")
    parser.add_argument("--admin", action="store_true", help="add role=admin")
    parser.add_argument("--ttl", type=int, help="lifetime in seconds")
    args = parser.parse_args()
    settings = Settings.from_env()
    role = "admin" if args.admin else None
    print(issue_token(settings, args.user, args.username, role=role, ttl_seconds=args.ttl))


if __name__ == "__main__":
    main()
