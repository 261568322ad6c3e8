import type { JobSpec } from '../core/types.ts';
import { GantryError } from '../core/errors.ts';
import { effectiveTenant, type EffectiveTenant, type TenantRecord, type Tier } from '../core/tiers.ts';
import type { Store } from '../store/store.ts';

/** How long the submit path trusts its copy of the tenant table (other servers' writes show after this). */
const TTL_MS = 1000;

/**
 * The tenant table as the API's submit path sees it: read at most once a second (submits run at
 * thousands per second), refreshed at once by writes through this server. The scheduler does not
 * use it: it reads the table afresh every cycle.
 */
export class TenantDirectory {
  readonly #store: Store;
  readonly default_tier: Tier;
  #records: Map<string, TenantRecord> | null = null;
  #at = 0;
  #loading: Promise<Map<string, TenantRecord>> | null = null;

  constructor(store: Store, defaultTier: Tier) {
    this.#store = store;
    this.default_tier = defaultTier;
  }

  invalidate(): void {
    this.#records = null;
  }

  async #all(): Promise<Map<string, TenantRecord>> {
    if (this.#records && Date.now() - this.#at < TTL_MS) return this.#records;
    this.#loading ??= this.#store.listTenants().then((list) => {
      this.#records = new Map(list.map((t) => [t.id, t]));
      this.#at = Date.now();
      this.#loading = null;
      return this.#records;
    }, (err) => {
      this.#loading = null;
      throw err;
    });
    return this.#loading;
  }

  async effective(id: string): Promise<EffectiveTenant> {
    return effectiveTenant(id, (await this.#all()).get(id) ?? null, this.default_tier);
  }

  /**
   * Refuses (PRIORITY_NOT_ALLOWED, field `priority`) a job whose tenant may not use its priority.
   * `prefix` names the job in a batch (`jobs[3].`).
   */
  async assertMaySubmit(specs: readonly JobSpec[], prefix: (i: number) => string = () => ''): Promise<void> {
    for (let i = 0; i < specs.length; i++) {
      const s = specs[i]!;
      const t = await this.effective(s.tenant);
      if (!t.allowed_priorities.includes(s.priority)) {
        const field = `${prefix(i)}priority`;
        throw new GantryError(
          'PRIORITY_NOT_ALLOWED',
          `${field}: tenant ${s.tenant} (tier ${t.tier}) may not submit '${s.priority}' jobs; allowed: ${t.allowed_priorities.join(', ')}`,
          { field, tenant: s.tenant, tier: t.tier, allowed_priorities: t.allowed_priorities },
        );
      }
    }
  }
}
