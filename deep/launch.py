"""Launchers: who works through a sweep's tasks. `local` in this process, `processes` as worker processes on
this machine (K per GPU, or one per CPU core), `submitit` as a SLURM job array (each job K workers per GPU of its
own), and `auto` (the default) picks `processes` when this machine would run more than one worker, else `local`.
Every one runs `deep.work.work`, the one execution path. Workers share nothing but the run store, whose claims keep
two of them from running one task and let a live worker take over a dead one's tasks; the parent only watches the
store (one progress bar, counted by looking up each task's own directory) and the workers (a failed worker stops
the sweep)."""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import ClassVar

import torch
from tqdm.auto import tqdm

from deep.runs import Claim, RunStore
from deep.tasks import Runtime, Task, closure
from deep.work import POLL_S, work

STOP_GRACE_S = 60.0  # how long stopped workers get to release their claims before they are killed
States = Callable[[], list[tuple[str, str]]]  # each worker's (state, message), see `watch`


class WorkerError(RuntimeError):
    """A worker failed, or every worker stopped with tasks left unfinished."""


@dataclass(frozen=True)
class LaunchOptions:
    """How many workers and, for SLURM, what each job of the array asks for."""

    workers: int | None = None  # processes: worker processes in all (default: see worker_count); submitit: jobs
    runs_per_device: int | None = None  # K workers per GPU (default 1); without GPUs, K workers (default: one per core)
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
    """One worker of a sweep, picklable so that a spawned process can run it."""

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
        if self.threads:  # before any work: workers sharing cores must not each start a thread per core
            torch.set_num_threads(self.threads)
        # The parent (or the SLURM log) shows the one sweep bar; per-training bars of many workers would interleave.
        work(self.tasks, RunStore(self.root), replace(self.runtime, progress=False), self.index)


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def visible_gpus(runtime: Runtime) -> list[str]:
    """The GPUs workers are dealt, as CUDA_VISIBLE_DEVICES names them for child processes; none when the runtime
    names one device (--device cpu or cuda:1: every worker uses that one) or there is no GPU."""
    if runtime.device not in (None, "cuda"):
        return []
    count = torch.cuda.device_count()
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    return (listed.split(",") if listed else [str(i) for i in range(count)])[:count]


def _check_counts(workers: int | None, runs_per_device: int | None) -> None:
    for name, value in (("--workers", workers), ("--runs-per-device", runs_per_device)):
        if value is not None and value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")


def worker_count(gpus: list[str], cpu: bool, cores: int, workers: int | None, runs_per_device: int | None) -> int:
    """Workers on one machine (or SLURM job): `workers` in all, else K = `runs_per_device` per GPU, or K on the one
    device; K defaults to 1 on a GPU and to one per core (`cores`) on the CPU (`cpu`)."""
    _check_counts(workers, runs_per_device)
    if workers is not None and runs_per_device is not None:
        raise ValueError("give --workers (workers in all) or --runs-per-device (workers per device), not both")
    if workers is not None:
        return workers
    return (runs_per_device or (cores if cpu else 1)) * max(1, len(gpus))


def worker_gpus(gpus: list[str], count: int) -> list[str | None]:
    """The GPU each of `count` workers sees, dealt round-robin over `gpus`; all None (the runtime's device) without."""
    return [gpus[i % len(gpus)] if gpus else None for i in range(count)]


def machine_workers(
    tasks: list[Task], root: str, runtime: Runtime, workers: int | None, runs_per_device: int | None, cores: int,
    job: int = 0,
) -> list[SweepWorker]:
    """The workers of one machine (or of SLURM job `job`): their GPUs, indices and a share of `cores` each."""
    gpus = visible_gpus(runtime)
    n = worker_count(gpus, runtime.torch_device.type == "cpu", cores, workers, runs_per_device)
    threads = max(1, cores // n)  # n workers share the cores instead of each using all of them
    return [SweepWorker(tasks, root, runtime, job * n + i, threads, gpu) for i, gpu in enumerate(worker_gpus(gpus, n))]


def _release_and_end(signum: int, frame: object) -> None:
    """Release this process's claims, then end by the same signal (its parent sees a killed worker, not a failure)."""
    Claim.release_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _run_worker(worker: SweepWorker, errors: mp.Queue) -> None:
    """A worker process's main: SIGTERM releases its claims before it ends; an exception sends its traceback to the
    parent and exits with 1."""
    signal.signal(signal.SIGTERM, _release_and_end)
    # SLURM's time-out warning may reach every process of a job: the job's own process handles it (SweepJob).
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    try:
        worker()
    except BaseException:
        errors.put((worker.index, traceback.format_exc()))
        sys.exit(1)


class WorkerPool:
    """Workers as processes on this machine, started on entering and stopped (killed) on leaving."""

    running: ClassVar[list[WorkerPool]] = []  # the pools of this process, stopped together when a SLURM job requeues

    def __init__(self, workers: list[SweepWorker]) -> None:
        ctx = mp.get_context("spawn")  # a fresh interpreter per worker: safe with CUDA and with torch's threads
        self.errors = ctx.Queue()
        self.procs = [ctx.Process(target=_run_worker, name=f"sweep-worker-{w.index}", args=(w, self.errors))
                      for w in workers]

    def states(self) -> list[tuple[str, str]]:
        """Each worker's (state, message) for `watch`."""
        return [self._state(i, proc) for i, proc in enumerate(self.procs)]

    def _state(self, i: int, proc: mp.process.BaseProcess) -> tuple[str, str]:
        if proc.exitcode is None or proc.exitcode == 0:
            return ("running" if proc.exitcode is None else "done"), ""
        if proc.exitcode < 0:
            return "lost", f"{proc.name} was killed by signal {-proc.exitcode}; the other workers take over its tasks"
        try:
            index, trace = self.errors.get(timeout=10)
        except queue.Empty:  # it died before it could report (e.g. while starting): its output says why
            index, trace = i, f"exit code {proc.exitcode}, see its output above"
        return "failed", f"worker {index} of {len(self.procs)} failed:\n{trace}"

    def stop(self, signum: int = signal.SIGKILL) -> None:
        """Send `signum` to every live worker and wait for all (SIGTERM: each releases its claims first)."""
        for proc in self.procs:
            if proc.is_alive():
                os.kill(proc.pid, signum)
        for proc in self.procs:
            proc.join(STOP_GRACE_S)
            if proc.is_alive():
                proc.kill()
                proc.join()

    def __enter__(self) -> WorkerPool:
        WorkerPool.running.append(self)
        for proc in self.procs:
            proc.start()
        return self

    def __exit__(self, *exc: object) -> None:  # also when interrupted: no worker outlives the pool
        self.stop()
        WorkerPool.running.remove(self)


def watch(states: States, stop: Callable[[], None], tick: Callable[[], None] = lambda: None) -> None:
    """Poll the workers until none runs, calling `tick` in between; `states()` gives each worker's (state, message),
    a state being "running", "done", "failed" (stops the others and raises WorkerError) or "lost" (killed from
    outside: reported once, and the others take over its tasks once its claims go stale)."""
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
        tick()
        time.sleep(POLL_S)


@dataclass(frozen=True)
class SweepJob:
    """One job of a SLURM array: its workers (K per GPU of the job, or per its cores on the CPU; see worker_count)
    as processes, or in the job's own process when it has one; the job ends when all of them end."""

    tasks: list[Task]
    root: str
    runtime: Runtime
    index: int
    runs_per_device: int | None = None
    cores: int | None = None  # None: the cores the job may use

    def __call__(self) -> None:
        """Work through the sweep until every task is finished."""
        workers = machine_workers(self.tasks, self.root, self.runtime, None, self.runs_per_device,
                                  self.cores or _cpu_count(), self.index)
        if len(workers) == 1:
            workers[0]()
            return
        with WorkerPool(workers) as pool:
            watch(pool.states, pool.stop)

    def checkpoint(self) -> object:
        """On a SLURM time-out, requeue the same job: its workers release their claims at once, so that it (or any
        worker) resumes their trainings from their last checkpoints without waiting for the claims to go stale."""
        from submitit.helpers import DelayedSubmission

        for pool in WorkerPool.running:
            pool.stop(signal.SIGTERM)
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


def launch_local(tasks: list[Task], root: str, runtime: Runtime, options: LaunchOptions) -> None:
    """Run the whole sweep in this process."""
    with _Progress(root, tasks, options.progress) as progress:
        seen: set[str] = set()

        def count(task: Task) -> None:  # work() reports each finished task; a recomputed one counts once
            if task.key not in seen:
                seen.add(task.key)
                progress.bar.update()

        work(tasks, progress.store, runtime, on_done=count)


def launch_processes(tasks: list[Task], root: str, runtime: Runtime, options: LaunchOptions) -> None:
    """Run the sweep in worker processes on this machine: K per visible GPU, or one per CPU core (see worker_count)."""
    workers = machine_workers(tasks, root, runtime, options.workers, options.runs_per_device, _cpu_count())
    with WorkerPool(workers) as pool, _Progress(root, tasks, options.progress) as progress:
        watch(pool.states, pool.stop, progress.refresh)


def launch_auto(tasks: list[Task], root: str, runtime: Runtime, options: LaunchOptions) -> None:
    """`processes` when this machine would run more than one worker (several GPUs or CPU cores, --workers or
    --runs-per-device above 1), else `local`: one worker gains nothing from a process of its own."""
    count = worker_count(visible_gpus(runtime), runtime.torch_device.type == "cpu", _cpu_count(), options.workers,
                         options.runs_per_device)
    (launch_processes if count > 1 else launch_local)(tasks, root, runtime, options)


def launch_submitit(tasks: list[Task], root: str, runtime: Runtime, options: LaunchOptions) -> None:
    """Submit the sweep as a job array of `options.workers` SLURM jobs and watch it finish; each job runs K =
    `options.runs_per_device` workers per GPU it has (see SweepJob)."""
    _check_counts(options.workers, options.runs_per_device)
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
    jobs = executor.submit_array([SweepJob(tasks, root, runtime, i, options.runs_per_device, options.cpus_per_task)
                                  for i in range(options.workers)])
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
        watch(lambda: [state(job) for job in jobs], cancel_all, progress.refresh)


LAUNCHERS: dict[str, Callable[[list[Task], str, Runtime, LaunchOptions], None]] = {
    "auto": launch_auto,
    "local": launch_local,
    "processes": launch_processes,
    "submitit": launch_submitit,
}
