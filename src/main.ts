// Every program in one process, for a laptop: api, worker and controller, plus a local
// S3-compatible server outside production. The api comes first, so that a stop publishes what
// it accepted while the worker still lands it.
import { apiProgram } from "./api/api.ts";
import { controllerProgram } from "./controller/controller.ts";
import { runPrograms } from "./core/program/main-runner.ts";
import { workerProgram } from "./worker/worker.ts";

runPrograms("sluice", [apiProgram, workerProgram, controllerProgram]);
