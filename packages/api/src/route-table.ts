import type { AnyRouteDefinition, RouteId, RouteMethod } from '@tabagent/values';

/** One mounted path and the route id serving each of its methods. */
export interface MountedPath {
  /** The catalogue path (`/v1/models/{model}`), an alias, or its `/api` legacy form. */
  readonly path: string;
  /** The same path in Express 5 syntax (`/v1/models/:model`). */
  readonly expressPath: string;
  readonly methods: ReadonlyMap<RouteMethod, RouteId>;
}

/** `{param}` (OpenAPI) to `:param` (Express 5). */
export function toExpressPath(path: string): string {
  return path.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, ':$1');
}

/**
 * Every path to mount, grouped by path. Literal paths come before parameterised ones so that
 * `/v1/models/loaded` is not taken for `/v1/models/{model}`. Two routes on the same path and
 * method are a catalogue bug and throw.
 *
 * The Python server's `/api/v1/...` prefix is not served: no client of the original called it
 * (the extension never did: reference/extension-protocol.md), `/api/*` is Ollama's API here, and
 * LM Studio's native REST API lives at `/api/v0` and `/api/v1` with other shapes, so its clients
 * would get plausible but wrong answers.
 */
export function buildRouteTable(routes: readonly AnyRouteDefinition[]): MountedPath[] {
  const grouped = new Map<string, Map<RouteMethod, RouteId>>();
  const add = (path: string, method: RouteMethod, id: RouteId): void => {
    let methods = grouped.get(path);
    if (methods === undefined) {
      methods = new Map();
      grouped.set(path, methods);
    }
    const existing = methods.get(method);
    if (existing !== undefined && existing !== id) throw new Error(`Routes ${existing} and ${id} both serve ${method} ${path}`);
    methods.set(method, id);
  };
  const current: Array<[string, RouteMethod, RouteId]> = [];
  for (const route of routes) {
    for (const path of [route.path, ...(route.aliases ?? [])]) current.push([path, route.method, route.id as RouteId]);
  }
  for (const [path, method, id] of current) add(path, method, id);

  const table = [...grouped].map(([path, methods]): MountedPath => ({ path, expressPath: toExpressPath(path), methods }));
  const isLiteral = (entry: MountedPath): boolean => !entry.path.includes('{');
  return [...table.filter(isLiteral), ...table.filter((entry) => !isLiteral(entry))];
}

/** A catalogue path (`/v1/models/{model}`) as an anchored pattern capturing each parameter. */
function patternOf(path: string): RegExp {
  return new RegExp(`^${path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '([^/]+)')}$`);
}

/**
 * A matcher from method and path to the route id the table serves there (HEAD as GET), for
 * what happens before Express routes a request (the guard's 401 and 403 are counted by route).
 */
export function createRouteMatcher(table: readonly MountedPath[]): (method: string, path: string) => RouteId | undefined {
  const patterns = table.map((entry) => ({ pattern: patternOf(entry.path), methods: entry.methods }));
  return (method, path) => {
    const wanted = (method === 'HEAD' ? 'GET' : method) as RouteMethod;
    for (const { pattern, methods } of patterns) {
      if (!pattern.test(path)) continue;
      const id = methods.get(wanted);
      if (id !== undefined) return id;
    }
    return undefined;
  };
}

/**
 * A matcher from method and path to the route and its decoded path parameters, for serving
 * catalogue routes without Express: exact paths by one map lookup, parameterised ones by pattern,
 * in the table's order (literal paths first). Undefined where Express would decide (no route,
 * another method, a parameter that does not decode).
 */
export function createCatalogueMatcher(
  table: readonly MountedPath[],
): (method: string, path: string) => { id: RouteId; params: Record<string, string> } | undefined {
  const literal = new Map<string, ReadonlyMap<RouteMethod, RouteId>>();
  const patterns: { pattern: RegExp; names: string[]; methods: ReadonlyMap<RouteMethod, RouteId> }[] = [];
  for (const entry of table) {
    const names = [...entry.path.matchAll(/\{([^}]+)\}/g)].map((name) => name[1] ?? '');
    if (names.length === 0) literal.set(entry.path, entry.methods);
    else patterns.push({ pattern: patternOf(entry.path), names, methods: entry.methods });
  }
  const noParams: Record<string, string> = {};
  return (method, path) => {
    const wanted = (method === 'HEAD' ? 'GET' : method) as RouteMethod;
    const exact = literal.get(path);
    if (exact !== undefined) {
      const id = exact.get(wanted);
      return id === undefined ? undefined : { id, params: noParams };
    }
    for (const { pattern, names, methods } of patterns) {
      const found = pattern.exec(path);
      if (found === null) continue;
      const id = methods.get(wanted);
      if (id === undefined) return undefined;
      const params: Record<string, string> = {};
      try {
        for (const [index, name] of names.entries()) params[name] = decodeURIComponent(found[index + 1] ?? '');
      } catch {
        return undefined;
      }
      return { id, params };
    }
    return undefined;
  };
}
