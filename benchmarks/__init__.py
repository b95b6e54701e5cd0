"""Benchmarks: `python -m benchmarks.<name>` (see the README's Performance section)."""

# A probe's own peak memory, for the scripts the benchmarks run in fresh interpreters:
# ru_maxrss would keep the benchmark's own peak across exec.
PEAK_MB = """
def peak_mb():  # this process's own peak: ru_maxrss keeps the benchmark's across exec
    return [int(line.split()[1]) / 1024 for line in open("/proc/self/status")
            if line.startswith("VmHWM:")][0]
"""
