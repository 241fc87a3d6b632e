//! Diesel table definitions, matching `migrations/`.

diesel::table! {
    job_orders (id) {
        id -> Uuid,
        version -> Int8,
        content_hash -> Bytea,
        request_id -> Nullable<Text>,
        origin -> Text,
        changed_by_kind -> Text,
        changed_by_unit_type -> Nullable<Text>,
        changed_by_unit_code -> Nullable<Text>,
        title -> Text,
        occupation_name -> Text,
        occupation_alias -> Nullable<Text>,
        occupation_code -> Nullable<Text>,
        employer_cvr -> Text,
        employer_p_number -> Nullable<Text>,
        employer_name -> Text,
        employer_conflict_affected -> Bool,
        contact_name -> Nullable<Text>,
        contact_email -> Nullable<Text>,
        contact_phone -> Nullable<Text>,
        responsible_unit_type -> Text,
        responsible_unit_code -> Text,
        coordinator_id -> Nullable<Text>,
        coordinator_name -> Nullable<Text>,
        coordinator_allowed -> Bool,
        tasks -> Text,
        qualifications_and_pay -> Nullable<Text>,
        working_hours -> Nullable<Text>,
        continuous -> Bool,
        positions -> Nullable<Int4>,
        expected_start -> Nullable<Date>,
        mediation_deadline -> Nullable<Date>,
        status -> Text,
        status_reason -> Nullable<Text>,
        status_comment -> Nullable<Text>,
        sharing_scope -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        coordinator_reassignment_needed -> Bool,
        handover_coordinator_id -> Nullable<Text>,
        expired_at -> Nullable<Timestamptz>,
        first_seen_at -> Timestamptz,
        applied_at -> Timestamptz,
        closed_at -> Nullable<Timestamptz>,
        coordinator_allowed_since -> Timestamptz,
        snapshot -> Json,
        responsible_view_hash -> Nullable<Bytea>,
        shared_view_hash -> Nullable<Bytea>,
        responsible_since -> Timestamptz,
        personal_data_deleted_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    mediation_log_views (job_order_id, unit_type, unit_code) {
        job_order_id -> Uuid,
        unit_type -> Text,
        unit_code -> Text,
        view_hash -> Bytea,
    }
}

diesel::table! {
    job_order_former_units (job_order_id, unit_type, unit_code, role) {
        job_order_id -> Uuid,
        unit_type -> Text,
        unit_code -> Text,
        role -> Text,
        until -> Timestamptz,
        since -> Timestamptz,
        version -> Nullable<Int8>,
    }
}

diesel::table! {
    job_order_sharing (job_order_id, unit_type, unit_code) {
        job_order_id -> Uuid,
        unit_type -> Text,
        unit_code -> Text,
        since -> Timestamptz,
    }
}

diesel::table! {
    processed_messages (message_id) {
        message_id -> Text,
        queue -> Text,
        outcome -> Text,
        job_order_id -> Nullable<Uuid>,
        version -> Nullable<Int8>,
        processed_at -> Timestamptz,
    }
}

diesel::table! {
    outbox (id) {
        id -> Int8,
        event_id -> Text,
        exchange -> Text,
        routing_key -> Text,
        headers -> Jsonb,
        body -> Bytea,
        job_order_id -> Nullable<Uuid>,
        created_at -> Timestamptz,
        hub_time -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    mediation_logs (job_order_id) {
        job_order_id -> Uuid,
        version -> Int8,
        content_hash -> Bytea,
        total -> Int4,
        awaiting_approval -> Int4,
        undecided -> Int4,
        first_seen_at -> Timestamptz,
        applied_at -> Timestamptz,
        snapshot -> Json,
    }
}

diesel::table! {
    mediation_entries (job_order_id, mediation_id) {
        job_order_id -> Uuid,
        mediation_id -> Uuid,
        log_version -> Int8,
        person_ref -> Text,
        registered_by_type -> Text,
        registered_by_code -> Text,
        registered_at -> Timestamptz,
        status -> Text,
        status_changed_at -> Timestamptz,
        status_changed_by_kind -> Text,
        status_changed_by_unit_type -> Nullable<Text>,
        status_changed_by_unit_code -> Nullable<Text>,
        searchable_cv -> Bool,
        cv_active -> Bool,
        protected_identity -> Bool,
        note -> Nullable<Text>,
    }
}

diesel::table! {
    mediation_entry_history (id) {
        id -> Int8,
        job_order_id -> Uuid,
        mediation_id -> Uuid,
        log_version -> Int8,
        from_status -> Nullable<Text>,
        to_status -> Text,
        changed_at -> Timestamptz,
        changed_by_kind -> Text,
        changed_by_unit_type -> Nullable<Text>,
        changed_by_unit_code -> Nullable<Text>,
        message_id -> Text,
        recorded_at -> Timestamptz,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> Uuid,
        token_hash -> Bytea,
        unit_type -> Text,
        unit_code -> Text,
        name -> Nullable<Text>,
        created_at -> Timestamptz,
        expires_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    api_log_reads (id) {
        id -> Int8,
        token_id -> Uuid,
        unit_type -> Text,
        unit_code -> Text,
        job_order_id -> Uuid,
        read_at -> Timestamptz,
    }
}

diesel::joinable!(job_order_sharing -> job_orders (job_order_id));
diesel::joinable!(mediation_logs -> job_orders (job_order_id));
diesel::joinable!(mediation_entries -> mediation_logs (job_order_id));
diesel::allow_tables_to_appear_in_same_query!(
    job_orders,
    job_order_sharing,
    job_order_former_units,
    processed_messages,
    outbox,
    mediation_logs,
    mediation_entries,
    mediation_entry_history,
    mediation_log_views
);
