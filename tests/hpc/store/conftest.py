import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import pytest


@pytest.fixture(scope="session")
def spawn_pool():
    """Three real worker processes (spawn: no state inherited), shared by the
    multi-process tests so that interpreter start-up is paid once."""
    with ProcessPoolExecutor(
        max_workers=3, mp_context=multiprocessing.get_context("spawn")
    ) as pool:
        yield pool
