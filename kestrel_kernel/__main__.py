"""`python -m kestrel_kernel -f <connection file>`: what kernel.json runs."""

from .kernel import KestrelKernel, KestrelKernelApp

KestrelKernelApp.launch_instance(kernel_class=KestrelKernel)
