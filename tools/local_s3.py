"""A throwaway S3 endpoint on 127.0.0.1 for trying the team workflow (``make s3-server``).

moto's S3 server, in memory, with one empty bucket; it accepts any access key and secret.
Prints the ``dvc remote`` commands that point a clone at it, then serves until Ctrl-C.

    python tools/local_s3.py [--port 5555] [--bucket mnist-dvc]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import socket
import sys
import threading


def main(argv: list[str] | None = None) -> int:
    """Serve until interrupted; exit 1 with one line if the port is taken."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=5555, help="port on 127.0.0.1")
    parser.add_argument("--bucket", default="mnist-dvc", help="the bucket to create")
    args = parser.parse_args(argv)

    import boto3
    from moto.server import ThreadedMotoServer

    # The server binds in its own thread and would wait forever on a taken port: try first.
    try:
        with socket.create_server(("127.0.0.1", args.port)):
            pass
    except OSError as error:
        print(f"error: 127.0.0.1:{args.port}: {error.strerror}", file=sys.stderr)
        return 1
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    server = ThreadedMotoServer("127.0.0.1", args.port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{args.port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    client.create_bucket(Bucket=args.bucket)
    print(
        f"S3 on {endpoint} (in memory: gone when this stops), bucket {args.bucket}. In a clone:\n"
        f"  dvc remote add -d storage s3://{args.bucket}/mnist\n"
        f"  dvc remote modify storage endpointurl {endpoint}\n"
        "  export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local\n"
        "Ctrl-C stops it.",
        flush=True,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
