import { runPrograms } from "../core/program/main-runner.ts";
import { workerProgram } from "./worker.ts";

runPrograms("worker", [workerProgram]);
