"""`python -m kestrel_kernel -f <connection file>`: what kernel.json runs."""

from ipykernel.kernelapp import IPKernelApp

from .kernel import KestrelKernel

IPKernelApp.launch_instance(kernel_class=KestrelKernel)
