"""What parsing OTLP trace bodies costs, no database: prints figures.

Builds the bodies of an otlp_bench.py profile (small-traces or bigger-traces), then runs
ingest.formats.otlp.parse_otlp_traces over all of them `--rounds` times in this process and
prints its CPU per 1,000 spans (the fastest round and the median), with the decode and map
stages apart. `--code DIR` parses with the ingest package of another checkout (e.g. main,
unpacked by `git archive`), so before and after can run one after the other on the same bodies.

The CPU of a round still swings with the host's load; for a figure the load does not move, count
instructions (valgrind, one round against three, the difference halved):

    python bench/parse_cost.py --profile small-traces --spans 20480 --rounds 7
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        python bench/parse_cost.py --spans 4096 --rounds 1      # then --rounds 3
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--profile", choices=("small-traces", "bigger-traces"), default="small-traces"
    )
    parser.add_argument("--spans", type=int, default=20_480)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="send the bodies as OTLP/JSON")
    parser.add_argument(
        "--code", type=Path, default=BASE_DIR, help="checkout to import ingest from"
    )
    args = parser.parse_args(argv)
    sys.path[:0] = [str(args.code), str(BASE_DIR / "bench")]
    from otlp_bench import generate

    from ingest.formats import otlp

    generator_args = argparse.Namespace(
        session_ids=args.profile == "small-traces",
        live_sessions=64,
        session_traces=4,
        seed=1,
        batch=512,
        trace_spans=64,
        spans=args.spans,
        concurrency=1,
        gzip=False,
    )
    _, generated = generate(generator_args)
    bodies = [body.raw for body in generated]
    content_type = "application/x-protobuf"
    if args.json:
        from google.protobuf.json_format import MessageToJson
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        bodies = [MessageToJson(ExportTraceServiceRequest.FromString(b)).encode() for b in bodies]
        content_type = "application/json"
    spans = sum(body.spans for body in generated)
    limit = 1_000_000
    gc.freeze()  # as config/wsgi.py does in the server
    rounds: list[float] = []
    for _ in range(args.rounds):
        started = time.process_time()
        for body in bodies:
            otlp.parse_otlp_traces(body, content_type, max_string_chars=limit)
        rounds.append(time.process_time() - started)
    decode = mapping = 0.0
    if not args.json:
        for body in bodies:
            started = time.process_time()
            batch = otlp.decode_protobuf_traces(body, max_string_chars=limit)
            decoded = time.process_time()
            otlp.map_spans(batch.items)
            decode, mapping = decode + decoded - started, mapping + time.process_time() - decoded
    per_thousand = 1e6 / spans
    print(
        f"{args.profile}{' (OTLP/JSON)' if args.json else ''}, {spans} spans, code {args.code}: "
        f"parse CPU per 1,000 spans {min(rounds) * per_thousand:.1f} ms fastest, "
        f"{statistics.median(rounds) * per_thousand:.1f} ms median of {args.rounds} rounds"
    )
    if decode:
        print(
            f"one more round split: decode {decode * per_thousand:.1f} ms, "
            f"map {mapping * per_thousand:.1f} ms per 1,000 spans"
        )
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
