// The local S3-compatible server as a process of its own, so the pipeline benchmark can
// measure its CPU and memory apart from the api's and the worker's.
// Usage: node bench/s3-server.ts <port> <directory>; prints "ready <endpoint>", stops on SIGTERM.
import { createLogger } from "../src/core/logger.ts";
import { startLocalS3 } from "../src/core/storage/local-s3.ts";

const [port, directory] = process.argv.slice(2);
if (!port || !/^\d+$/.test(port) || !directory) {
  console.error("usage: node bench/s3-server.ts <port> <directory>");
  process.exit(2);
}

const endpoint = `http://127.0.0.1:${port}`;
const server = await startLocalS3(
  endpoint,
  { accessKeyId: "test", secretAccessKey: "test" },
  directory,
  createLogger("bench-s3", "warn"),
);
if (!server) {
  console.error(`something already listens on ${endpoint}`);
  process.exit(1);
}
console.log(`ready ${endpoint}`);

let stopping = false;
const stop = () => {
  if (stopping) process.exit(1);
  stopping = true;
  server.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
