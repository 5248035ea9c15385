import { runPrograms } from "../core/main-runner.ts";
import { workerProgram } from "./worker.ts";

runPrograms("worker", [workerProgram]);
