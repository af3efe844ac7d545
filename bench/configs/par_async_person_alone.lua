-- bench_parallel: the person detector alone as the main model of parallel_async, one thread.
return { mode = "parallel_async", models = {
  { name = "person", path = "../../models/ssdlite_person.onnx", script = "../../config/scripts/ssd_person.lua", intra_op_threads = 1,
    max_queue_size = 2 },
} }
