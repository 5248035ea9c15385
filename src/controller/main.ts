import { runPrograms } from "../core/main-runner.ts";
import { controllerProgram } from "./controller.ts";

runPrograms("controller", [controllerProgram]);
