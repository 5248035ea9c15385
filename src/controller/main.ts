import { runPrograms } from "../core/program/main-runner.ts";
import { controllerProgram } from "./controller.ts";

runPrograms("controller", [controllerProgram]);
