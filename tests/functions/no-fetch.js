// Compiles, but is not a function edgefn can call.
export default { hello: "world" };
