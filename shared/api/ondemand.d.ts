// Generated from schemas/ondemand.yaml by `npm run api-types` (openapi-typescript): do not edit.
export interface paths {
    "/ondemand/movies": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** A page of movies, optionally of one genre */
        get: operations["movies"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/ondemand/movies/batch": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Many movies by id in one call */
        get: operations["moviesByIds"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/ondemand/movies/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** One movie */
        get: operations["movie"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/play/ondemand/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** A signed playback URL for a movie the caller is entitled to */
        get: operations["playMovie"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/admin/ondemand/movies": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Add a movie (admin) */
        post: operations["adminCreateMovie"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/admin/ondemand/movies/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        /** Replace a movie's details (admin) */
        put: operations["adminUpdateMovie"];
        post?: never;
        /** Remove a movie (admin) */
        delete: operations["adminDeleteMovie"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/health": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Liveness */
        get: operations["ondemandHealth"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
}
export type webhooks = Record<string, never>;
export interface components {
    schemas: {
        Movie: {
            id: string;
            title: string;
            year?: number;
            genres: string[];
            durationMinutes?: number;
            free: boolean;
        };
        MovieInput: {
            title: string;
            year?: number;
            genres: string[];
            durationMinutes?: number;
            free: boolean;
        };
        MovieList: {
            items: components["schemas"]["Movie"][];
            total: number;
        };
        MovieBatch: {
            items: components["schemas"]["Movie"][];
        };
        Playback: {
            /** Format: uri */
            url: string;
            /** Format: date-time */
            expiresAt: string;
        };
        Health: {
            /** @enum {string} */
            status: "ok";
            service: string;
        };
        HTTPError: {
            detail: string;
        };
        ValidationError: {
            loc: (string | number)[];
            msg: string;
            type: string;
        };
        HTTPValidationError: {
            detail: components["schemas"]["ValidationError"][];
        };
    };
    responses: {
        /** @description No caller identity */
        Unauthorized: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["HTTPError"];
            };
        };
        /** @description The caller may not do this (not entitled, or not an admin) */
        Forbidden: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["HTTPError"];
            };
        };
        /** @description No such movie */
        NotFound: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["HTTPError"];
            };
        };
        /** @description Validation error */
        ValidationFailed: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["HTTPValidationError"];
            };
        };
        /** @description The rights management service did not answer */
        DependencyUnavailable: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["HTTPError"];
            };
        };
    };
    parameters: {
        MovieId: string;
    };
    requestBodies: never;
    headers: never;
    pathItems: never;
}
export type $defs = Record<string, never>;
export interface operations {
    movies: {
        parameters: {
            query?: {
                limit?: number;
                offset?: number;
                genre?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The page and the total number of matching movies */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["MovieList"];
                };
            };
            422: components["responses"]["ValidationFailed"];
        };
    };
    moviesByIds: {
        parameters: {
            query: {
                ids: string[];
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The movies found, in the order asked; unknown ids are left out */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["MovieBatch"];
                };
            };
            422: components["responses"]["ValidationFailed"];
        };
    };
    movie: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: components["parameters"]["MovieId"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The movie */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Movie"];
                };
            };
            404: components["responses"]["NotFound"];
        };
    };
    playMovie: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: components["parameters"]["MovieId"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Where to play it, until when */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Playback"];
                };
            };
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            503: components["responses"]["DependencyUnavailable"];
        };
    };
    adminCreateMovie: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["MovieInput"];
            };
        };
        responses: {
            /** @description The new movie */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Movie"];
                };
            };
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            422: components["responses"]["ValidationFailed"];
        };
    };
    adminUpdateMovie: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: components["parameters"]["MovieId"];
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["MovieInput"];
            };
        };
        responses: {
            /** @description The updated movie */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Movie"];
                };
            };
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            422: components["responses"]["ValidationFailed"];
        };
    };
    adminDeleteMovie: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: components["parameters"]["MovieId"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Removed */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            401: components["responses"]["Unauthorized"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
        };
    };
    ondemandHealth: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The service is up */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Health"];
                };
            };
        };
    };
}
