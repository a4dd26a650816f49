import type { AnyRouteDefinition, RouteId, RouteMethod } from '@tabagent/values';

/** One mounted path and the route id serving each of its methods. */
export interface MountedPath {
  /** The catalogue path (`/v1/models/{model}`), an alias, or its `/api` legacy form. */
  readonly path: string;
  /** The same path in Express 5 syntax (`/v1/models/:model`). */
  readonly expressPath: string;
  readonly methods: ReadonlyMap<RouteMethod, RouteId>;
}

/** Prefix of the Python server's paths, served as an alias of `/v1/...`. */
export const legacyPathPrefix = '/api';

/** `{param}` (OpenAPI) to `:param` (Express 5). */
export function toExpressPath(path: string): string {
  return path.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, ':$1');
}

/**
 * Every path to mount, grouped by path. Literal paths come before parameterised ones so that
 * `/v1/models/loaded` is not taken for `/v1/models/{model}`; legacy `/api/v1/...` paths come
 * after the current ones. Two routes on the same path and method are a catalogue bug and throw.
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
  const legacy = current
    .filter(([path]) => path.startsWith('/v1/'))
    .map(([path, method, id]): [string, RouteMethod, RouteId] => [`${legacyPathPrefix}${path}`, method, id]);
  for (const [path, method, id] of [...current, ...legacy]) add(path, method, id);

  const table = [...grouped].map(([path, methods]): MountedPath => ({ path, expressPath: toExpressPath(path), methods }));
  const isLiteral = (entry: MountedPath): boolean => !entry.path.includes('{');
  return [...table.filter(isLiteral), ...table.filter((entry) => !isLiteral(entry))];
}
