# workerd running the same hello-world function edgefn runs in the throughput
# comparison (benches/reference/hello.js).
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [ (name = "main", worker = .hello) ],
  sockets = [ (name = "http", address = "*:18091", http = (), service = "main") ],
);

const hello :Workerd.Worker = (
  modules = [ (name = "hello.js", esModule = embed "hello.js") ],
  compatibilityDate = "2025-01-01",
);
