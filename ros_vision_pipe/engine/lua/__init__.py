"""The Lua side of the engine: sandboxed runtimes, tensor handles, the ``vp`` host API."""
