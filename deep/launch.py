"""Launchers: who works through a sweep's tasks. `local` in this process, `processes` as worker processes on
this machine (one per GPU), `submitit` as a SLURM job array. Every one runs `deep.tasks.work`, the one execution
path. Workers share nothing but the run store, whose claims keep two of them from running one task and let a
live worker take over a dead one's tasks; the parent only watches the store (one progress bar, counted by
looking up each task's own directory) and the workers (a failed worker stops the sweep)."""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from deep.runs import Claim, RunStore
from deep.tasks import POLL_S, Runtime, Task, closure, work


class WorkerError(RuntimeError):
    """A worker failed, or every worker stopped with tasks left unfinished."""


@dataclass(frozen=True)
class LaunchOptions:
    """How many workers and, for SLURM, what each job of the array asks for."""

    workers: int | None = None  # processes: one per visible GPU, else one per CPU core; submitit: required
    progress: bool = True
    cluster: str = "slurm"  # submitit's executor: "slurm", or "local" to run the job array on this machine
    partition: str | None = None
    time_min: int = 24 * 60
    gpus_per_task: int = 1
    cpus_per_task: int | None = None
    mem_gb: float | None = None
    array_parallelism: int | None = None
    log_dir: str | None = None  # default: <run store>/_slurm
    slurm_args: dict[str, str] = field(default_factory=dict)  # extra #SBATCH options, e.g. account, qos


@dataclass(frozen=True)
class SweepWorker:
    """One worker of a sweep, picklable so that a spawned process or a SLURM job can run it."""

    tasks: list[Task]
    root: str
    runtime: Runtime
    index: int
    threads: int | None = None
    gpu: str | None = None  # the one GPU this worker sees; None keeps what the environment gives

    def __call__(self) -> None:
        """Work through the sweep until every task is finished."""
        if self.gpu is not None:  # before anything touches CUDA in this process
            os.environ["CUDA_VISIBLE_DEVICES"] = self.gpu
        if self.threads:
            torch.set_num_threads(self.threads)
        work(self.tasks, RunStore(self.root), self.runtime, self.index)

    def checkpoint(self) -> object:
        """On a SLURM time-out, requeue the same worker: its claims are released at once, so that it (or any
        worker) resumes its trainings from their last checkpoints without waiting for the claims to go stale."""
        from submitit.helpers import DelayedSubmission

        Claim.release_all()
        return DelayedSubmission(self)


class _Progress:
    """One bar over every task of the sweep, counted by looking up each task's directory; on leaving, all must be done."""

    def __init__(self, root: str, tasks: list[Task], enabled: bool) -> None:
        self.store, self.tasks = RunStore(root), closure(tasks)
        self.bar = tqdm(total=len(self.tasks), desc="sweep", unit="task", disable=not enabled)
        self.done = 0

    def refresh(self) -> None:
        """Count the finished tasks again and show the count."""
        self.done = sum(self.store.done(task.config) for task in self.tasks)
        self.bar.n = self.done
        self.bar.refresh()

    def watch(self, states: Callable[[], list[tuple[str, str]]], stop: Callable[[], None]) -> None:
        """Refresh the bar while any worker runs; `states()` gives each worker's (state, message), a state being
        "running", "done", "failed" (stops the others and the sweep) or "lost" (killed from outside: reported once,
        and the others take over its runs once its claims go stale)."""
        lost: set[int] = set()
        while True:
            current = states()
            for i, (state, message) in enumerate(current):
                if state == "failed":
                    stop()
                    raise WorkerError(message)
                if state == "lost" and i not in lost:
                    lost.add(i)
                    tqdm.write(message, file=sys.stderr)
            if all(state != "running" for state, _ in current):
                return
            self.refresh()
            time.sleep(POLL_S)

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, error_type: type | None, *rest: object) -> None:
        if error_type is None:
            self.refresh()
        self.bar.close()
        if error_type is None and self.done < len(self.tasks):
            raise WorkerError(
                f"the workers stopped with {len(self.tasks) - self.done} of {len(self.tasks)} tasks unfinished: "
                "run the same command again to resume (finished tasks are kept)"
            )


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _visible_gpus() -> list[str]:
    """The ids of the GPUs this process may use, as CUDA_VISIBLE_DEVICES names them for child processes."""
    count = torch.cuda.device_count()
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    return (listed.split(",") if listed else [str(i) for i in range(count)])[:count]


def _check_workers(workers: int | None) -> None:
    if workers is not None and workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")


def launch_local(tasks: list[Task], root: str, runtime: Runtime, options: LaunchOptions) -> None:
    """Run the whole sweep in this process."""
    with _Progress(root, tasks, options.progress) as progress:
        seen: set[str] = set()

        def count(task: Task) -> None:  # work() reports each finished task; a recomputed one counts once
            if task.key not in seen:
                seen.add(task.key)
                progress.bar.update()

        work(tasks, progress.store, runtime, on_done=count)


def _report_failure(worker: SweepWorker, errors: mp.Queue) -> None:
    """Run a worker in a child process; on an exception, send its traceback to the parent and exit with 1."""
    try:
        worker()
    except BaseException:
        errors.put((worker.index, traceback.format_exc()))
        sys.exit(1)


def launch_processes(tasks: list[Task], root: str, runtime: Runtime, options: LaunchOptions) -> None:
    """Run the sweep in worker processes on this machine: one GPU each where there are GPUs, else CPU workers."""
    _check_workers(options.workers)
    gpus = _visible_gpus() if runtime.device in (None, "cuda") else []
    # By default one worker per GPU; on CPU one per core; on one named GPU (--device cuda:1) just one.
    n = options.workers or len(gpus) or (_cpu_count() if runtime.torch_device.type == "cpu" else 1)
    threads = max(1, _cpu_count() // n)  # n workers share the cores instead of each using all of them
    ctx = mp.get_context("spawn")  # a fresh interpreter per worker: safe with CUDA and with torch's threads
    errors = ctx.Queue()
    procs = [
        ctx.Process(
            target=_report_failure, name=f"sweep-worker-{i}",
            args=(SweepWorker(tasks, root, runtime, i, threads, gpus[i % len(gpus)] if gpus else None), errors),
        )
        for i in range(n)
    ]

    def state(i: int, proc: mp.Process) -> tuple[str, str]:
        if proc.exitcode is None or proc.exitcode == 0:
            return ("running" if proc.exitcode is None else "done"), ""
        if proc.exitcode < 0:
            return "lost", f"worker {i} was killed by signal {-proc.exitcode}; the other workers take over its tasks"
        try:
            index, trace = errors.get(timeout=10)
        except queue.Empty:  # it died before it could report (e.g. while starting): its output says why
            index, trace = i, f"exit code {proc.exitcode}, see its output above"
        return "failed", f"worker {index} of {n} failed:\n{trace}"

    def kill_all() -> None:
        for proc in procs:
            if proc.is_alive():
                proc.kill()

    for proc in procs:
        proc.start()
    try:
        with _Progress(root, tasks, options.progress) as progress:
            progress.watch(lambda: [state(i, proc) for i, proc in enumerate(procs)], stop=kill_all)
    finally:  # also when interrupted: no worker outlives the sweep
        kill_all()
        for proc in procs:
            proc.join()


def launch_submitit(tasks: list[Task], root: str, runtime: Runtime, options: LaunchOptions) -> None:
    """Submit the sweep as a job array of `options.workers` SLURM jobs (one GPU each) and watch it finish."""
    _check_workers(options.workers)
    if options.workers is None:
        raise ValueError("--launcher submitit needs --workers N: the number of jobs in the array that share the sweep")
    try:
        import submitit
        from submitit.core.utils import FailedJobError
    except ImportError as err:
        raise ValueError("--launcher submitit needs the submitit package: pip install 'drop-pruning[slurm]'") from err
    folder = Path(options.log_dir or Path(root) / "_slurm")
    try:
        executor = submitit.AutoExecutor(folder=folder, cluster=options.cluster)
    except RuntimeError as err:
        raise ValueError(f"{err} (--submitit-cluster local runs the same job array on this machine)") from err
    executor.update_parameters(
        name="deep-sweep", timeout_min=options.time_min, tasks_per_node=1, gpus_per_node=options.gpus_per_task,
        **({"cpus_per_task": options.cpus_per_task} if options.cpus_per_task else {}),
        **({"mem_gb": options.mem_gb} if options.mem_gb else {}),
        **({"slurm_partition": options.partition} if options.partition else {}),
        **({"slurm_array_parallelism": options.array_parallelism} if options.array_parallelism else {}),
        **({"slurm_additional_parameters": options.slurm_args} if options.slurm_args else {}),
    )
    workers = [SweepWorker(tasks, root, runtime, i, options.cpus_per_task) for i in range(options.workers)]
    jobs = executor.submit_array(workers)
    tqdm.write(f"submitted {len(jobs)} {executor.cluster} jobs ({', '.join(j.job_id for j in jobs[:3])}"
               f"{', ...' if len(jobs) > 3 else ''}); their logs are in {folder}", file=sys.stderr)

    def state(job: submitit.Job) -> tuple[str, str]:
        if not job.done():
            return "running", ""
        error = job.exception()
        if error is None:
            return "done", ""
        if isinstance(error, FailedJobError):
            return "failed", f"job {job.job_id} failed:\n{error}"
        # Ended without a result (cancelled, preempted, killed): the other jobs take over its tasks.
        return "lost", f"job {job.job_id} ended without finishing: {error}"

    def cancel_all() -> None:
        for job in jobs:
            job.cancel(check=False)

    with _Progress(root, tasks, options.progress) as progress:
        progress.watch(lambda: [state(job) for job in jobs], stop=cancel_all)


LAUNCHERS: dict[str, Callable[[list[Task], str, Runtime, LaunchOptions], None]] = {
    "local": launch_local,
    "processes": launch_processes,
    "submitit": launch_submitit,
}
