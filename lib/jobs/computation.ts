import { InvalidArgumentError } from '../common/errors.js';
import { shipModule, type ShippedModule } from '../task/module-shipping.js';
import { shipFunction, type ShippedFunction } from '../task/remote-function.js';
import type { ModuleFunction } from '../task/remote.js';
import type { ShippedCode } from '../task/shipped-code.js';
import type { JobRunContext } from './job-runner.js';

/** A standalone program as a computation: the file (shipped to the nodes) and its argv template. */
export interface ProgramComputation {
  program: string | URL;
  /** `{0}`, `{1}`... are the job's arguments; without placeholders the arguments follow. @default [] */
  argv?: string[];
}

/** What a job runs: a self-contained function, a module export, or a program. */
export type Computation = ((...args: any[]) => unknown) | ModuleFunction | ProgramComputation;

/** The task code of a program job: the program itself travels in the job's context. */
const PROGRAM_PLACEHOLDER = shipFunction(function program() {});

/** Ships a computation: its task code, the file contents to serve, and the program or depends bundle. */
export function shipComputation(
  computation: Computation,
  depends: (string | URL)[] | undefined,
): { code: ShippedCode; files: Map<string, Uint8Array>; program?: JobRunContext['program']; depends?: ShippedModule } {
  const files = new Map<string, Uint8Array>();
  const dependsBundle = (): ShippedModule | undefined => {
    if (!depends?.length) return undefined;
    const { shipped, contents } = shipModule(depends[0]!, 'depends', { depends: depends.slice(1) });
    for (const [hash, bytes] of contents) files.set(hash, bytes);
    return shipped;
  };
  if (typeof computation === 'function') {
    const bundle = dependsBundle();
    return { code: shipFunction(computation) as ShippedFunction, files, ...(bundle ? { depends: bundle } : {}) };
  }
  if (typeof computation === 'object' && computation !== null && 'program' in computation) {
    const { shipped, contents } = shipModule(computation.program, 'program', depends?.length ? { depends } : {});
    for (const [hash, bytes] of contents) files.set(hash, bytes);
    const argv = computation.argv ?? [];
    if (!Array.isArray(argv) || argv.some((part) => typeof part !== 'string')) throw new InvalidArgumentError('argv is an array of strings');
    return { code: PROGRAM_PLACEHOLDER, files, program: { bundle: shipped, argv } };
  }
  if (typeof computation === 'object' && computation !== null && 'module' in computation && typeof computation.export === 'string') {
    const { shipped, contents } = shipModule(computation.module, computation.export, { depends: [...(computation.depends ?? []), ...(depends ?? [])] });
    for (const [hash, bytes] of contents) files.set(hash, bytes);
    return { code: shipped, files };
  }
  throw new InvalidArgumentError('a computation is a function, {module, export, depends?} or {program, argv?}');
}
