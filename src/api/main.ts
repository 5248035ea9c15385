import { runPrograms } from "../core/main-runner.ts";
import { apiProgram } from "./api.ts";

runPrograms("api", [apiProgram]);
