"""Write request bodies for oha's -Z (one body per line, each request picks a line at random).

  make_bodies.py analyze COUNT PREFIX OUT              /api/analyze bodies
  make_bodies.py gemini COUNT PREFIX TEMPLATE OUT      the captured Gemini request, re-targeted

Every line carries a different learner text, so a service request only hits the cache when oha
happens to pick the same line twice (about requests / (2 * COUNT) of them; the run reports the
real hit count from /metrics). The Gemini lines are the captured body of the service's own
upstream request with its learner text swapped, so both sides carry the same sentence.
"""

import json
import sys

PLACEHOLDER = "Benchmark placeholder sentence."


def text(prefix: str, i: int) -> str:
    # Same length for every line: body size must not vary between requests.
    return f"I go to the store yesterday {prefix}{i:09d}."


def main() -> None:
    kind, count, prefix = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if kind == "analyze":
        out = sys.argv[4]
        with open(out, "w") as f:
            for i in range(count):
                f.write(json.dumps({"text": text(prefix, i), "user_id": "bench"}) + "\n")
    elif kind == "gemini":
        template, out = open(sys.argv[4]).read().strip(), sys.argv[5]
        if "\n" in template or PLACEHOLDER not in template:
            sys.exit("captured body must be one line containing the placeholder sentence")
        head, tail = template.split(PLACEHOLDER, 1)
        with open(out, "w") as f:
            for i in range(count):
                f.write(head + text(prefix, i) + tail + "\n")
    else:
        sys.exit(f"unknown kind {kind!r}")


if __name__ == "__main__":
    main()
