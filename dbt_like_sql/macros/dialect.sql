{#- The few places where SQLite and PostgreSQL differ, one macro each. `dialect` is "sqlite" or "postgresql". -#}

{#- Byte-order text comparison, so ORDER BY ties break identically on both dialects
    (PostgreSQL's default collation is locale-aware; SQLite's is binary). -#}
{% macro binary_order(expr) -%}
{%- if dialect == "postgresql" -%}{{ expr }} collate "C"{%- else -%}{{ expr }} collate binary{%- endif -%}
{%- endmacro %}

{#- The 'YYYY-MM' month of a date column (SQLite stores dates as ISO text, PostgreSQL as DATE). -#}
{% macro month_of(expr) -%}
{%- if dialect == "postgresql" -%}to_char({{ expr }}, 'YYYY-MM'){%- else -%}strftime('%Y-%m', {{ expr }}){%- endif -%}
{%- endmacro %}
