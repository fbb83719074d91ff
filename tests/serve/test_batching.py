"""The batching queue (galaxy_hpc.serve.batching): concurrent requests become one full
generator call, each caller gets its own images, and a full queue refuses more."""

from __future__ import annotations

import threading

import numpy as np
import pytest


@pytest.fixture(scope="module")
def gan(serve_models):
    from galaxy_hpc.generate.config import RuntimeSection
    from galaxy_hpc.generate.ondemand import load_ondemand, model_section_for

    return load_ondemand(model_section_for(str(serve_models["gan"])), None,
                         RuntimeSection(device="cpu", cpu_threads=1))


def _request(seed, n=2, z=0.1):
    from galaxy_hpc.generate.ondemand import DrawRequest

    return DrawRequest(n=n, seed=seed, conditions={"redshift": z, "log_stellar_mass": 10.0})


def test_concurrent_requests_share_one_call(gan):
    from galaxy_hpc.serve.batching import BatchQueue

    calls = []
    queue = BatchQueue(gan, max_batch=8, max_wait_s=0.5, max_queue_images=64,
                       on_batch=lambda images, seconds: calls.append(images))
    try:
        futures = {}
        barrier = threading.Barrier(4)

        def client(seed):
            barrier.wait()
            futures[seed] = queue.submit(_request(seed, z=0.05 * seed))

        threads = [threading.Thread(target=client, args=(s,)) for s in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        results = {seed: f.result(timeout=60) for seed, f in futures.items()}
    finally:
        queue.close()
    assert calls == [8]  # four requests of 2 images: one generator call of 8
    for seed, drawn in results.items():  # each caller got its own images (GAN: batch-exact)
        [alone] = gan.draw([_request(seed, z=0.05 * seed)])
        np.testing.assert_array_equal(drawn.images, alone.images)


def test_full_queue_refuses_and_big_requests_run_alone(gan):
    from galaxy_hpc.generate.ondemand import DrawRequest
    from galaxy_hpc.serve.batching import BatchQueue, QueueFull

    calls = []
    # The worker waits up to 1 s for a batch of 100: the three requests stay queued.
    queue = BatchQueue(gan, max_batch=100, max_wait_s=1.0, max_queue_images=6,
                       on_batch=lambda images, seconds: calls.append(images))
    try:
        futures = [queue.submit(_request(s)) for s in range(3)]
        with pytest.raises(QueueFull, match="6 images are waiting"):
            queue.submit(_request(9))
        with pytest.raises(ValueError, match="missing"):
            queue.submit(DrawRequest(conditions={"redshift": 0.1}))
        for future in futures:
            future.result(timeout=60)
    finally:
        queue.close()
    assert calls == [6]
    calls.clear()
    queue = BatchQueue(gan, max_batch=4, max_wait_s=0.2, max_queue_images=64,
                       on_batch=lambda images, seconds: calls.append(images))
    try:
        futures = [queue.submit(_request(s, n=n)) for s, n in enumerate((3, 3, 6))]
        for future in futures:
            future.result(timeout=60)
    finally:
        queue.close()
    assert calls == [3, 3, 6]  # 3 + 3 is over max_batch; 6 alone is over it and runs alone
    calls.clear()
    queue = BatchQueue(gan, max_batch=8, max_wait_s=0.2, max_queue_images=64,
                       on_batch=lambda images, seconds: calls.append(images))
    try:
        exact = [_request(s) for s in range(2)]
        for request in exact:
            request.alone = True
        for future in [queue.submit(r) for r in exact]:
            future.result(timeout=60)
    finally:
        queue.close()
    assert calls == [2, 2]  # `alone` requests are never merged
