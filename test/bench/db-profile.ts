import mongoose from 'mongoose';

interface Entry {
  count: number;
  totalMs: number;
}

/**
 * Counts and times every database command of a connection, grouped by command, collection
 * and the shape of its filter (field names, not values). Read from the driver's command
 * monitoring, so it sees exactly what goes over the wire.
 */
export class DbProfile {
  private readonly entries = new Map<string, Entry>();
  private readonly started = new Map<number, string>();

  /**
   * Profiles every MongoClient that connects from now on (helpgate opens its own inside
   * startHelpgate): command monitoring must be on before the connection pool exists.
   */
  static install(): DbProfile {
    const profile = new DbProfile();
    const proto = mongoose.mongo.MongoClient.prototype as unknown as { connect: (...args: unknown[]) => Promise<unknown> };
    const connect = proto.connect;
    proto.connect = function (this: InstanceType<typeof mongoose.mongo.MongoClient>, ...args: unknown[]) {
      (this as unknown as { monitorCommands: boolean }).monitorCommands = true;
      profile.attach(this);
      return connect.apply(this, args);
    };
    return profile;
  }

  private attach(client: InstanceType<typeof mongoose.mongo.MongoClient>): void {
    client.on('commandStarted', (e) => this.started.set(e.requestId, this.keyOf(e.commandName, e.command as Record<string, unknown>)));
    const done = (e: { requestId: number; duration: number }) => {
      const key = this.started.get(e.requestId);
      if (!key) return;
      this.started.delete(e.requestId);
      const entry = this.entries.get(key) ?? { count: 0, totalMs: 0 };
      entry.count++;
      entry.totalMs += e.duration;
      this.entries.set(key, entry);
    };
    client.on('commandSucceeded', done);
    client.on('commandFailed', done);
  }

  private keyOf(name: string, cmd: Record<string, unknown>): string {
    const collection = String(cmd[name] ?? '');
    const shape = (f: unknown) => (f && typeof f === 'object' ? `{${Object.keys(f).sort().join(',')}}` : '');
    let filter = '';
    if (name === 'find' || name === 'count') filter = shape(cmd.filter ?? cmd.query);
    else if (name === 'update' || name === 'delete') filter = ((cmd.updates ?? cmd.deletes) as { q?: unknown }[] | undefined)?.map((u) => shape(u.q)).join(' ') ?? '';
    else if (name === 'findAndModify') filter = shape(cmd.query);
    else if (name === 'aggregate') filter = shape(((cmd.pipeline as Record<string, unknown>[] | undefined)?.[0] ?? {}).$match);
    return `${name} ${collection} ${filter}`.trim();
  }

  /** How many write commands (insert, update, delete, findAndModify, bulkWrite) were sent. */
  writes(): number {
    let n = 0;
    for (const [key, e] of this.entries) if (/^(insert|update|delete|findAndModify|bulkWrite) /.test(key)) n += e.count;
    return n;
  }

  /** The write commands counted so far, by key (command, collection, filter shape). */
  writeCounts(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [key, e] of this.entries) if (/^(insert|update|delete|findAndModify|bulkWrite) /.test(key)) out.set(key, e.count);
    return out;
  }

  /** Forgets what was counted so far (commands in flight are still counted when they end). */
  reset(): void {
    this.entries.clear();
  }

  /** The top entries by total time, one line each. */
  report(perMessage: number, top = 20): string[] {
    const rows = [...this.entries].sort((a, b) => b[1].totalMs - a[1].totalMs).slice(0, top);
    const total = [...this.entries.values()].reduce((s, e) => s + e.totalMs, 0);
    return rows.map(
      ([key, e]) =>
        `  ${key.padEnd(52)} ${String(e.count).padStart(7)} calls  ${(e.count / perMessage).toFixed(2).padStart(6)}/msg  ${(e.totalMs / e.count).toFixed(1).padStart(8)} ms avg  ${((100 * e.totalMs) / total).toFixed(1).padStart(5)} % of DB time`,
    );
  }
}
