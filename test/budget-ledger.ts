import { expect, vi } from "vitest";
import type { RuleLimits } from "../src/limiter/types.ts";
import type { ObjectRule } from "../src/object/protocol.ts";
import { linksOf } from "../src/object-client/ask-object.ts";
import type { RateLimiterNamespace } from "../src/object-client/call-object.ts";
import type { HeldLease } from "../src/object-client/lease-table.ts";
import type { Clock } from "../src/runtime/clock.ts";
import type { Admission } from "./history-checker.ts";

/** One rule's budget for one value of its key (a user, an org, everyone): the object that counts it, and its history. */
export interface Budget {
  /** How failures name it: `org o1 (token-bucket)`. */
  label: string;
  object: string;
  rule: ObjectRule;
  limits: RuleLimits;
  /** Every call it admitted, for the history checker. */
  admitted: Admission[];
}

/** A budget's state: what its object has `remaining`, and `left`, that plus what this isolate's leases on it hold unspent. */
export interface BudgetState {
  remaining: number;
  left: number;
}

/**
 * What each budget of a run has left, and what it should have: at one instant (no refill), a budget's `left` goes
 * down by exactly the cost of each call it admitted (docs/architecture.md, invariant 2). Counting this isolate's
 * unspent leases keeps that exact whatever the leases do: a grant moves units from the object to a lease, a give-back
 * moves them back, a request admitted from a lease spends one, an unspend returns it. The one exception the lease
 * table states (a request unspent after its lease went back stays spent) is counted apart, in `late`.
 * Reads the isolate's lease table through spies: restore them with `vi.restoreAllMocks()`.
 */
export class BudgetLedger {
  readonly budgets = new Map<string, Budget>();
  /** Every lease this isolate took up, with its object. */
  readonly held: Array<{ object: string; lease: HeldLease }> = [];
  /** Leases a denied request was unspent from after they had gone back to their object. */
  readonly late: HeldLease[] = [];
  private lateSeen = 0;
  private readonly spent = new Map<Budget, number>();
  private baseline: Record<string, number> = {};

  constructor(
    private readonly namespace: RateLimiterNamespace,
    private readonly clock: Clock,
  ) {
    const table = linksOf(namespace).leases;
    const takeGrant = table.takeGrant.bind(table);
    const unspend = table.unspend.bind(table);
    vi.spyOn(table, "takeGrant").mockImplementation((object, ...rest) => {
      const lease = takeGrant(object, ...rest);
      if (lease) this.held.push({ object, lease });
      return lease;
    });
    vi.spyOn(table, "unspend").mockImplementation((lease) => {
      if (lease.givenBack) this.late.push(lease);
      unspend(lease);
    });
  }

  /**
   * What `budget` has now. Leases this isolate stopped spending before now are left out: a run lets them end at their
   * object too (twice their lifetime) before it reads a budget at a new instant.
   */
  async stateOf(budget: Budget): Promise<BudgetState> {
    const report = await this.namespace.getByName(budget.object).inspect({ rules: [budget.rule] });
    const remaining = report.rules[0]?.remaining ?? Number.NaN;
    let unspent = 0;
    for (const { object, lease } of this.held) {
      if (object === budget.object && !lease.givenBack && lease.endsAtMs > this.clock.nowMs())
        unspent += lease.unspent * costIn(lease, budget);
    }
    return { remaining, left: remaining + unspent };
  }

  /** Every budget's `left`, by label. */
  async left(): Promise<Record<string, number>> {
    const all = [...this.budgets.values()];
    const states = await Promise.all(all.map((budget) => this.stateOf(budget)));
    return Object.fromEntries(all.map((budget, index) => [budget.label, states[index]?.left ?? Number.NaN]));
  }

  /** A call admitted now at `cost`, in each of these budgets. */
  admit(budgets: readonly Budget[], cost: number): void {
    for (const budget of budgets) {
      budget.admitted.push({ atMs: this.clock.nowMs(), cost });
      this.spent.set(budget, (this.spent.get(budget) ?? 0) + cost);
    }
  }

  /** Reads every budget and counts from there: at a new instant, or after a restart. */
  async startOver(): Promise<Record<string, number>> {
    this.baseline = await this.left();
    this.spent.clear();
    this.lateSeen = this.late.length;
    return this.baseline;
  }

  /** Checks that every budget has what it had at `startOver`, less exactly what it admitted since; returns what it read. */
  async expectExact(message: string): Promise<Record<string, number>> {
    const expected = { ...this.baseline };
    for (const [budget, cost] of this.spent) expected[budget.label] = (expected[budget.label] ?? 0) - cost;
    for (const lease of this.late.slice(this.lateSeen)) {
      const object = this.held.find((held) => held.lease === lease)?.object;
      for (const budget of this.budgets.values()) {
        if (budget.object === object) expected[budget.label] = (expected[budget.label] ?? 0) - costIn(lease, budget);
      }
    }
    const left = await this.left();
    expect(left, message).toEqual(expected);
    return left;
  }
}

/** Units one request of `lease` costs `budget`'s rule; 0 when the lease is not drawn on that rule. */
function costIn(lease: HeldLease, budget: Budget): number {
  const index = lease.verdicts.findIndex((verdict) => verdict.name === budget.rule.name);
  return index < 0 ? 0 : (lease.costs[index] ?? 0);
}
