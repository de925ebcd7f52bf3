import { NoDatabaseError } from '../../errors/errors.ts';

/** Another live process runs the embedded engine of this data folder. */
export class DataDirInUseError extends NoDatabaseError {
  constructor(
    readonly dataDir: string,
    readonly pid: number,
  ) {
    super(`the data folder ${dataDir} is in use by helpgate process ${pid} (its lock file ${dataDir}/helpgate.lock); stop that process first, or set another HELPGATE_DATA_DIR`);
  }
}

/** The data folder was made by another engine than the one asked for or available. */
export class EngineMismatchError extends NoDatabaseError {}

/** No helpgate runs on this data folder, and the command was not allowed to start its engine. */
export class NoRunningDatabaseError extends NoDatabaseError {}
