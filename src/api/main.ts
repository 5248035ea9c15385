import { runPrograms } from "../core/program/main-runner.ts";
import { apiProgram } from "./api.ts";

runPrograms("api", [apiProgram]);
