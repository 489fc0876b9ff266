// The floor of any exact limiter that cleans up after its clients, on clients seen for the first time: ceiling-do's
// one call to the client's object, plus what a client's first decision must store before it is answered, its state
// (one row) and its cleanup alarm. Later calls store nothing. `npm run bench` measures it beside zipf-1000 and
// new-client (with ceiling-do's bindings).
import { DurableObject } from "cloudflare:workers";
import { counters } from "../systems/shared.ts";

export class Noop extends DurableObject {
  private stored = false;

  ping(): number {
    counters.doRequests++;
    if (!this.stored && this.ctx.storage.kv.get("state") === undefined) {
      this.ctx.storage.kv.put("state", 1);
      void this.ctx.storage.setAlarm(Date.now() + 3_600_000);
      counters.rowsWritten += 2;
    }
    this.stored = true;
    return 1;
  }
}

// The same Worker as ceiling-do: one call to the client's object, then `ok`.
export { default } from "../systems/ceiling-do.ts";
