# The load test from the upgrade guide (seed/backend-ai-upgrade-guide.md, "Add Load Testing"),
# kept as it was with two changes:
# - audio_url points at a real WAV served on loopback (BENCH_AUDIO_URL; `bash bench/run.sh`
#   serves one and starts the service with AUDIO_FETCH_ALLOW_PRIVATE=true), since the guide's
#   example.com URL can never be fetched;
# - `self.user_id` is given a value in on_start: locust's HttpUser has no such attribute, so the
#   guide's file raised AttributeError on every task.
# Run: locust -f tests/load/locustfile.py --host=http://127.0.0.1:8000
import asyncio  # unused, kept from the guide's file
import itertools
import os
import time

from locust import HttpUser, task, between

AUDIO_URL = os.environ.get("BENCH_AUDIO_URL", "http://127.0.0.1:8080/test.wav")
_user_numbers = itertools.count()


class BackendAIUser(HttpUser):
    wait_time = between(1, 3)

    def on_start(self):
        self.user_id = next(_user_numbers)

    @task(3)
    def transcribe(self):
        self.client.post(
            "/api/transcribe",
            json={
                "audio_url": AUDIO_URL,
                "user_id": f"test_user_{self.user_id}",
                "session_id": f"session_{time.time()}"
            },
            headers={"X-API-Key": "test_key"}
        )

    @task(2)
    def analyze(self):
        self.client.post(
            "/api/analyze",
            json={
                "text": "I go to the store yesterday.",
                "user_id": f"test_user_{self.user_id}",
                "session_id": f"session_{time.time()}"
            }
        )

    @task(1)
    def pronunciation(self):
        self.client.post(
            "/api/pronunciation",
            json={
                "audio_url": AUDIO_URL,
                "reference_text": "The quick brown fox",
                "user_id": f"test_user_{self.user_id}"
            }
        )
