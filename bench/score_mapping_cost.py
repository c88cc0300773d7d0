"""What looking for evaluations (scores) costs the OTLP mapper: prints figures, no database.

Builds the bodies otlp_bench.py sends (agentops-style spans, no evaluations in them: the cost
every exporter pays), decodes them once, then maps them with ingest.formats.otlp.map_spans as
it is, and again with the evaluation pass (otlp_spans._evaluation_records) replaced by one that does
nothing (the mapper as it was before scores), alternating rounds so a busy minute hurts both
alike. Prints this process's CPU per 1,000 spans for each, and the difference.

    python bench/score_mapping_cost.py --spans 25600 --rounds 5
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(BASE_DIR), str(BASE_DIR / "bench")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=25_600)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--session-ids", action="store_true", help="small traces with session.id")
    args = parser.parse_args(argv)

    import django

    django.setup()
    from otlp_bench import generate

    from ingest.formats import otlp, otlp_spans

    generator_args = argparse.Namespace(
        session_ids=args.session_ids,
        live_sessions=64,
        session_traces=4,
        seed=7,
        batch=512,
        trace_spans=64,
        spans=args.spans,
        concurrency=1,
        gzip=False,
    )
    _, bodies = generate(generator_args)
    batches = [otlp.decode_protobuf_traces(b.raw, max_string_chars=1_000_000) for b in bodies]
    spans = sum(len(batch.items) for batch in batches)
    gc.freeze()
    real = otlp_spans._evaluation_records
    cpu = {"with the evaluation pass": 0.0, "without": 0.0}
    for _ in range(args.rounds):
        for label, finder in (("with the evaluation pass", real), ("without", lambda spans: [])):
            otlp_spans._evaluation_records = finder
            started = time.process_time()
            for batch in batches:
                otlp.map_spans(batch.items)
            cpu[label] += time.process_time() - started
    otlp_spans._evaluation_records = real
    per_thousand = {
        label: seconds * 1000 / (spans * args.rounds) * 1000 for label, seconds in cpu.items()
    }
    for label, ms in per_thousand.items():
        print(f"map, {label}: {ms:.2f} ms CPU per 1,000 spans")
    extra = per_thousand["with the evaluation pass"] - per_thousand["without"]
    print(
        f"evaluation pass: {extra:+.2f} ms per 1,000 spans "
        f"({extra / per_thousand['without']:+.1%} of the map stage); {spans} spans x {args.rounds}"
    )
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
